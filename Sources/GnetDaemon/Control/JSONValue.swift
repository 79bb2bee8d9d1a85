/// A JSON value as the control protocol carries it: requests, answers and the stats.
///
/// Whole numbers keep their kind: `int` for those that fit an `Int64`, `uint` for counters past
/// it, `double` for the rest. Objects are unordered; `JSONValue.encoded` writes their keys
/// sorted, so an answer always reads the same. The accessors (`string`, `int`, `uint`, `double`,
/// `bool`, `array`, `object`) and the subscripts return nil when the value is of another kind,
/// so a call site reads `answer["state"]?.string`.
public enum JSONValue: Equatable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A whole number that fits an `Int64`.
    case int(Int64)
    /// A whole number above `Int64.max` (a counter, say).
    case uint(UInt64)
    /// A number with a fraction or an exponent, or a whole number too large for a `UInt64`.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The element `index` of an array; nil out of range or for a value that is not an array.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }

    /// The string, if this is one.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The whole number, if this is one that fits an `Int64`.
    public var int: Int64? {
        switch self {
        case .int(let v): return v
        case .uint(let v): return Int64(exactly: v)
        default: return nil
        }
    }

    /// The whole number, if this is one that is not negative.
    public var uint: UInt64? {
        switch self {
        case .int(let v): return UInt64(exactly: v)
        case .uint(let v): return v
        default: return nil
        }
    }

    /// Any number, as a `Double` (large counters lose their last digits).
    public var double: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    /// The boolean, if this is one.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements, if this is an array.
    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members, if this is an object.
    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The value as a person reads it in gnetctl's tables: a string without its quotes, a
    /// number as written, anything else as JSON.
    public var text: String {
        switch self {
        case .string(let s): return s
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let v): return v.isFinite ? String(v) : "null"
        default: return encoded
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByStringInterpolation,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    /// `null`.
    public init(nilLiteral: ()) { self = .null }
    /// A boolean.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// A whole number.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A number with a fraction.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A string (interpolations included).
    public init(stringLiteral value: String) { self = .string(value) }
    /// An array.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An object; a key given twice keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue {
    /// A whole number of any integer type, as `int` when it fits an `Int64`, else `uint`.
    public init(_ value: some BinaryInteger) {
        if let v = Int64(exactly: value) { self = .int(v) } else { self = .uint(UInt64(truncatingIfNeeded: value)) }
    }

    /// An array of strings.
    public init(_ strings: [String]) { self = .array(strings.map { .string($0) }) }
}
