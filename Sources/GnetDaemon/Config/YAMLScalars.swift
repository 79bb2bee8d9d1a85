/// What a scalar means when the decoder asks for a type: the rules Yams applied before, kept
/// so every configuration reads as it did.
/// - Any scalar is a string (`greeting: 3` is "3"; quoted or not).
/// - Numbers and null are plain (unquoted) scalars only: `"5"` is not a number.
/// - Whole numbers: an optional sign, `_` separators ignored, `0x` hex, `0b` binary, `0o` or a
///   leading `0` octal (YAML 1.1), else decimal; out of the type's range is not a number.
///   (Yams' sexagesimal `1:30` is no longer a number.)
/// - Other numbers: decimal or exponent notation, `.inf`, `-.inf`, `.nan` (any case as YAML
///   writes them).
/// - Booleans, quoted or not, in any case: true/yes/on and false/no/off (YAML 1.1).
/// - Null: `~`, `null`, `Null`, `NULL` or nothing, unquoted.
enum YAMLScalars {
    /// Whether `node` is a YAML null.
    static func isNull(_ node: YAMLNode) -> Bool {
        guard case .scalar(let s, plain: true) = node.content else { return false }
        return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL"
    }

    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    /// A whole number of type `T` from a plain scalar's text.
    static func integer<T: FixedWidthInteger>(_ text: String, as type: T.Type) -> T? {
        var digits = Substring(text.filter { $0 != "_" })
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        for (prefix, r) in [("0x", 16), ("0b", 2), ("0o", 8)] where digits.hasPrefix(prefix) {
            radix = r
            digits = digits.dropFirst(2)
            break
        }
        if radix == 10, digits.count > 1, digits.hasPrefix("0") {
            radix = 8
            digits = digits.dropFirst()
        }
        // The digits alone: T(_:radix:) would take a second sign ("0x-5").
        guard let first = digits.first, first != "-", first != "+" else { return nil }
        return T((negative ? "-" : "") + digits, radix: radix)
    }

    /// A number of type `T` from a plain scalar's text.
    static func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ text: String, as type: T.Type) -> T? {
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: return T(text.filter { $0 != "_" })
        }
    }
}
