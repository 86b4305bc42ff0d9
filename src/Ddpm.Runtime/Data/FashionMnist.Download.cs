using System.Security.Cryptography;

namespace Ddpm.Data;

public static partial class FashionMnist
{
    /// <summary>Where Zalando Research publishes the IDX .gz files.</summary>
    public const string OfficialBaseUrl = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

    // The published MD5s of the official .gz files (the same ones torchvision checks).
    private static readonly Dictionary<string, string> OfficialMd5 = new()
    {
        [TrainImagesFile] = "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        [TrainLabelsFile] = "25c81989df183df01b3e8a0aad5dffbe",
        [TestImagesFile] = "bef4ecab320f06d8554ea6380940ec79",
        [TestLabelsFile] = "bb300cfdad3c16e7a12a480ee83cd310",
    };

    /// <summary>Connecting, and every wait for more bytes, gives up after this long.</summary>
    private static readonly TimeSpan DownloadStallTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Source 3: the official .gz files, checked against their MD5s, then cached as plain IDX.</summary>
    private static bool TryDownload(string folder, Action<string>? log, List<string> failures)
    {
        var temp = Directory.CreateTempSubdirectory("ddpm-fashion-mnist-");
        string url = OfficialBaseUrl;
        try
        {
            using var handler = new SocketsHttpHandler { ConnectTimeout = DownloadStallTimeout };
            using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
            foreach (var name in Files)
            {
                url = OfficialBaseUrl + name + ".gz";
                log?.Invoke($"Fashion-MNIST: downloading {url}.");
                var path = Path.Combine(temp.FullName, name + ".gz");
                Download(http, url, path);
                var md5 = Md5(path);
                if (md5 != OfficialMd5[name])
                    throw DataFormat.Error(path, $"downloaded from {url} has MD5 {md5}, not the published {OfficialMd5[name]}.");
            }
            var data = ReadIdxFiles(temp.FullName);
            WriteCache(folder, data);
            log?.Invoke($"Fashion-MNIST: cached {data.TrainImages.Count} training and {data.TestImages.Count} test images in {folder}.");
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidDataException or OperationCanceledException
                                     or UnauthorizedAccessException)
        {
            var why = e is OperationCanceledException ? $"no progress for {DownloadStallTimeout.TotalSeconds:0} s" : e.Message;
            failures.Add($"download {url}: {why}");
            log?.Invoke($"Fashion-MNIST: download failed: {why}");
            return false;
        }
        finally
        {
            try { temp.Delete(recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Streams one URL to a file; each step (headers, every read) must progress within the stall timeout.</summary>
    private static void Download(HttpClient http, string url, string path)
    {
        using var stall = new CancellationTokenSource(DownloadStallTimeout);
        using var response = http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, stall.Token).GetAwaiter().GetResult();
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        using var body = response.Content.ReadAsStreamAsync(stall.Token).GetAwaiter().GetResult();
        using var file = File.Create(path);
        var buffer = new byte[81920];
        while (true)
        {
            stall.CancelAfter(DownloadStallTimeout);
            int n = body.ReadAsync(buffer, stall.Token).AsTask().GetAwaiter().GetResult();
            if (n == 0) break;
            file.Write(buffer, 0, n);
        }
    }

    private static string Md5(string path)
    {
        using var file = File.OpenRead(path);
#pragma warning disable CA5351 // the upstream publishes MD5 sums: this compares with them, it secures nothing
        return Convert.ToHexStringLower(MD5.HashData(file));
#pragma warning restore CA5351
    }
}
