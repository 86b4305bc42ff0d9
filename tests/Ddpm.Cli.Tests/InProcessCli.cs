namespace Ddpm.Cli.Tests;

/// <summary>Runs the `ddpm` command line in this process, capturing what it writes.</summary>
internal static class InProcessCli
{
    public static (int Code, string Out, string Err) Ddpm(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = DdpmCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
