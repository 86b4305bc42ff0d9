using Ddpm.Cli;

return DdpmCli.Run(args, Console.Out, Console.Error);
