/// The options of a command line read one at a time, as gnetd and gnetctl read theirs (by hand:
/// swift-argument-parser would link FoundationEssentials into the daemon): `-c FILE`,
/// `--config FILE` and `--config=FILE` are the same option; anything not starting with `-` is
/// an operand.
public struct CommandLineOptions {
    /// One item of the command line.
    public enum Item: Equatable {
        /// An option by the name given (`-c`, `--config`), with the value written after `=`.
        case option(String, inlineValue: String?)
        /// Anything else (a command, a stray word).
        case operand(String)
    }

    private var rest: ArraySlice<String>

    /// Reads `arguments` (without the program name).
    public init(_ arguments: [String]) { rest = arguments[...] }

    /// The next item, or nil at the end.
    public mutating func next() -> Item? {
        guard let argument = rest.popFirst() else { return nil }
        guard argument.hasPrefix("-"), argument != "-" else { return .operand(argument) }
        if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
            return .option(String(argument[..<eq]), inlineValue: String(argument[argument.index(after: eq)...]))
        }
        return .option(argument, inlineValue: nil)
    }

    /// The value of option `name`: the part after `=`, else the next argument; nil when there
    /// is none (the caller reports "missing value").
    public mutating func value(_ inlineValue: String?) -> String? {
        inlineValue ?? rest.popFirst()
    }

    /// The arguments not read yet.
    public var remaining: [String] { Array(rest) }
}
