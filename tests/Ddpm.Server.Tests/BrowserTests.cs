using System.Globalization;
using Ddpm.Cli.Tests;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace Ddpm.Server.Tests;

/// <summary>
/// ddpm serve's page in a real browser: Debian's Chromium, headless, driven through chromium-driver (apt-get install chromium
/// chromium-driver; .ci/run installs them). Without them the test reports Skipped with the reason.
/// </summary>
public sealed class BrowserTests
{
    private const string Chromium = "/usr/bin/chromium";
    private const string ChromeDriver = "/usr/bin/chromedriver";
    private const int LossRows = 40;

    [SkippableFact]
    public async Task Page_lists_the_run_grows_its_loss_curve_live_and_draws_the_grid_the_form_asks_for()
    {
        Skip.IfNot(File.Exists(Chromium), $"{Chromium} is missing (apt-get install chromium): the browser test needs Debian's Chromium.");
        Skip.IfNot(File.Exists(ChromeDriver), $"{ChromeDriver} is missing (apt-get install chromium-driver): the browser test needs it to drive Chromium.");

        string root = Directory.CreateTempSubdirectory("ddpm-browser-test-").FullName;
        try
        {
            string runs = Path.Combine(root, "runs");
            string run = TinyRuns.MakeRun<TinyUNet>(runs, "tiny", "TinyUNet", plannedSteps: 100);
            // A longer curve than the fixture's two rows, falling as a real one does.
            string lossCsv = Path.Combine(run, "loss.csv");
            File.WriteAllText(lossCsv, "step,loss,lr,grad_norm\n" + string.Concat(Enumerable.Range(1, LossRows).Select(step =>
                FormattableString.Invariant($"{step},{0.08 + 0.25 * Math.Exp(-step / 12.0) + 0.03 * Math.Sin(step * 1.7):F4},0.001,{1 + 0.5 / step:F3}\n"))));

            // Held the way ddpm train holds it (RunFolderLock: an exclusive lock, its process id inside): the run is training.
            using var held = new FileStream(Path.Combine(run, "run.lock"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            held.Write(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n"));
            held.Flush();

            await using var server = await TinyRuns.Start(runs);
            using var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
            service.SuppressInitialDiagnosticInformation = true;
            service.HideCommandPromptWindow = true;
            var options = new ChromeOptions { BinaryLocation = Chromium };
            options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,1500",
                                 "--no-first-run", "--disable-extensions", "--user-data-dir=" + Path.Combine(root, "chromium-profile"));
            options.SetLoggingPreference(LogType.Browser, LogLevel.All);
            using var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(30)); // Dispose quits Chromium and the driver, also on failure
            var js = (IJavaScriptExecutor)driver;

            driver.Navigate().GoToUrl(server.Url);
            var row = Until(() => driver.FindElements(By.CssSelector("#runs tr[data-run]")).FirstOrDefault(), 15, "the runs table to list a run");
            Assert.Equal(["tiny"], driver.FindElements(By.CssSelector("#runs tr[data-run]")).Select(r => r.GetAttribute("data-run") ?? "").ToArray());
            Assert.Equal(["tiny", "TinyUNet", $"{LossRows} / 100", "training"], row.FindElements(By.TagName("td")).Take(4).Select(c => c.Text).ToArray());

            row.Click();
            Until(() => driver.FindElement(By.Id("run-view")).Displayed, 10, "the run's view to open");
            int rows = File.ReadLines(lossCsv).Skip(1).Count(line => line.Length > 0);
            Assert.Equal(LossRows, rows);
            Until(() => LossPoints(driver).Count == rows, 15, $"the loss chart to show {rows} points");
            Assert.Equal(Enumerable.Range(1, rows).Select(s => s.ToString(CultureInfo.InvariantCulture)), LossPoints(driver).Select(c => c.GetAttribute("data-step")));

            // A row appended while the page is open appears without a reload (the marker would be gone after one).
            js.ExecuteScript("window.ddpmTestMarker = 'still here';");
            File.AppendAllText(lossCsv, FormattableString.Invariant($"{rows + 1},0.0900,0.001,1.010\n"));
            Until(() => LossPoints(driver).Count == rows + 1, 20, $"the loss chart to grow to {rows + 1} points");
            Assert.Equal((rows + 1).ToString(CultureInfo.InvariantCulture), LossPoints(driver)[^1].GetAttribute("data-step"));
            Assert.Equal("still here", js.ExecuteScript("return window.ddpmTestMarker;"));
            var cells = driver.FindElements(By.CssSelector("#runs tr[data-run='tiny'] td")).Select(c => c.Text).ToArray();
            Assert.Equal(($"{rows + 1} / 100", "training", "0.0900"), (cells[2], cells[3], cells[4])); // the table follows too

            // Six 8x8 images: a grid of 3 columns and 2 rows, 2 pixels of padding, doubled (small images are shown at twice their size).
            const int count = 6, columns = 3, gridRows = 2, size = 8, padding = 2, scale = 2;
            Type(driver.FindElement(By.Id("f-count")), count.ToString(CultureInfo.InvariantCulture));
            Type(driver.FindElement(By.Id("f-steps")), "5");
            Type(driver.FindElement(By.Id("f-seed")), "7");
            driver.FindElement(By.Id("f-submit")).Click();
            Until(() => driver.FindElement(By.Id("result-image")).Displayed
                        && js.ExecuteScript("const i = document.getElementById('result-image'); return i.complete && i.naturalWidth > 0;") is true,
                  30, "the sampled grid to show", () => driver.FindElement(By.Id("sample-status")).Text);
            long width = (long)js.ExecuteScript("return document.getElementById('result-image').naturalWidth;")!;
            long height = (long)js.ExecuteScript("return document.getElementById('result-image').naturalHeight;")!;
            Assert.Equal(((columns * (size + padding) + padding) * scale, (gridRows * (size + padding) + padding) * scale), ((int)width, (int)height));
            Assert.StartsWith("done: tiny last.ckpt: 6 images", driver.FindElement(By.Id("sample-status")).Text);
            Assert.EndsWith("/result", driver.FindElement(By.Id("result-link")).GetAttribute("href"));

            string shots = Path.Combine(AppContext.BaseDirectory, "browser-test");
            Directory.CreateDirectory(shots);
            string shot = Path.Combine(shots, "serve-page.png");
            // The whole page in one picture, beyond the window's height.
            var picture = (Dictionary<string, object?>)driver.ExecuteCdpCommand("Page.captureScreenshot",
                new Dictionary<string, object?> { ["format"] = "png", ["captureBeyondViewport"] = true })!;
            File.WriteAllBytes(shot, Convert.FromBase64String((string)picture["data"]!));
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(shot).Take(4).ToArray());

            var errors = driver.Manage().Logs.GetLog(LogType.Browser).Where(e => e.Level >= LogLevel.Warning).Select(e => e.Message).ToArray();
            Assert.Empty(errors);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static IReadOnlyList<IWebElement> LossPoints(IWebDriver driver) => driver.FindElements(By.CssSelector("#loss-points circle[data-step]"));

    private static void Type(IWebElement input, string text)
    {
        input.Clear();
        input.SendKeys(text);
    }

    /// <summary>Polls <paramref name="probe"/> until it gives a value (true, or not null); fails saying what did not happen.</summary>
    private static T Until<T>(Func<T?> probe, int seconds, string what, Func<string>? state = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                var value = probe();
                if (value is not null && value is not false) return value;
            }
            catch (StaleElementReferenceException) { } // the page redrew the element between finding and reading it
            if (DateTime.UtcNow > deadline)
                throw new Xunit.Sdk.XunitException($"waited {seconds} s for {what}{(state is null ? "" : "; the page says: " + state())}.");
            Thread.Sleep(100);
        }
    }
}
