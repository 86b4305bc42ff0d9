using Microsoft.AspNetCore.Http;
namespace Ddpm.Server;

/// <summary>A request the server refuses: one JSON error with its status and, for a bad field, the field's name.</summary>
internal sealed class ApiError(int status, string message, string? field = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Field { get; } = field;

    public static ApiError BadField(string field, string message) => new(StatusCodes.Status400BadRequest, message, field);
    public static ApiError NotFound(string message) => new(StatusCodes.Status404NotFound, message);

    /// <summary>The body every error answer carries.</summary>
    public object Body => Field is null ? new ErrorBody(Message, null) : new ErrorBody(Message, Field);

    /// <summary>An exception's message as one line for a client: .NET's " (Parameter 'x')" suffix and native frames dropped.</summary>
    public static string Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } && e.InnerException is not null) e = e.InnerException;
        string message = e.Message;
        if (e is ArgumentException { ParamName: { } name } && message.IndexOf($" (Parameter '{name}')", StringComparison.Ordinal) is int at and > 0)
            message = message[..at];
        return message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? e.GetType().Name;
    }
}

/// <summary>The JSON of an error: what is wrong and, for a bad request field, which.</summary>
/// <param name="Error">One line saying what is wrong.</param>
/// <param name="Field">The request field at fault, when one is.</param>
public sealed record ErrorBody(string Error, string? Field);
