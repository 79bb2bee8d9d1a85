import GnetDaemon
import Testing

/// The control protocol's JSON: what the parser takes and refuses, what the encoder writes,
/// and garbage that must never crash either (every input surface gets one).
@Suite struct JSONParserTests {
    @Test func validDocumentsParse() throws {
        let v = try JSONParser.parse(#" { "ok" : true, "n": -12, "big": 18446744073709551615, "x": 1.5e3, "s": "a\"b\\c\/d\u00e9\ud83d\ude00", "l": [null, false, [], {}] } "#)
        #expect(v["ok"]?.bool == true)
        #expect(v["n"] == .int(-12) && v["n"]?.int == -12 && v["n"]?.uint == nil)
        #expect(v["big"] == .uint(.max) && v["big"]?.int == nil)
        #expect(v["x"]?.double == 1500)
        #expect(v["s"]?.string == "a\"b\\c/dé😀")
        #expect(v["l"]?.array == [.null, .bool(false), .array([]), .object([:])])
        #expect(v["l"]?[2] == .array([]) && v["l"]?[9] == nil && v["missing"] == nil)
        #expect(try JSONParser.parse("-9223372036854775808") == .int(.min))
        #expect(try JSONParser.parse("18446744073709551616") == .double(18446744073709551616))
        #expect(try JSONParser.parse("-0") == .int(0))
        #expect(try JSONParser.parse("1E-400") == .double(0))
        #expect(try JSONParser.parse("\"\"") == .string(""))
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":}", "{1:2}", "01", "-01", "1.", ".5", "+1", "1e", "1e+",
        "-", "NaN", "Infinity", "tru", "nul", "True", "'a'", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\u{1}\"", "\"a\nb\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "[1] x", "{} {}", "1 2", "[1]]", "1e400", "-1e400",
        "{\"a\":1,\"a\":2}", "\u{FEFF}{}", "[1,\n", "\"\\",
    ])
    func invalidDocumentsAreRefused(_ text: String) {
        #expect(throws: JSONParseError.self, "accepted: \(text.debugDescription)") { try JSONParser.parse(text) }
    }

    @Test func invalidUTF8InAStringIsRefused() throws {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0xC3, 0xA9]] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        }
        #expect(try JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONParser.parse(ok).array != nil)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        // Far deeper than any stack would take, unterminated: refused at level 65, not a crash.
        for opener in ["[", "{\"a\":"] {
            do {
                _ = try JSONParser.parse(String(repeating: opener, count: 200_000))
                Issue.record("accepted 200000 levels")
            } catch {
                #expect(error.message.contains("nested deeper than 64"), "\(error)")
            }
        }
    }

    @Test func errorsSayWhere() {
        do {
            _ = try JSONParser.parse("{\"command\": \"stats\"} x")
            Issue.record("trailing bytes accepted")
        } catch {
            #expect(error.offset == 21 && error.description == "unexpected bytes after the value at byte 21")
        }
    }

    @Test func encoderEscapesAndSortsKeys() throws {
        let v: JSONValue = ["b": "x/y é\u{7F}", "a": ["q\"\\\n\r\t\u{8}\u{C}\u{1}\u{1F}", 1.5, nil, true], "c": .uint(.max), "d": .int(-3), "e": .double(.infinity)]
        let text = v.encoded
        #expect(text == #"{"a":["q\"\\\n\r\t\b\f\u0001\u001f",1.5,null,true],"b":"x/y é\#u{7F}","c":18446744073709551615,"d":-3,"e":null}"#)
        var expected = v
        if case .object(var o) = expected { o["e"] = .null; expected = .object(o) }
        #expect(try JSONParser.parse(text) == expected)
        #expect(JSONValue.string("GnetctlActions").text == "GnetctlActions" && JSONValue.double(2.5).text == "2.5")
    }

    /// Random bytes, random token soup and mutations of a real request: never a crash, and
    /// whatever parses encodes to text that parses to the same value.
    @Test func garbageNeverCrashesAndWhatParsesRoundTrips() throws {
        var x: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        let tokens = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "d83d", "\\ude00", "\\ud800", "a", "0", "-", "1", "e", ".", "+",
                      "true", "null", "fals", " ", "\n", "\u{0}", "é", "\"command\"", "\"stats\"", "18446744073709551616", "1e999"]
        let real = Array(#"{"command": "stats", "n": [1, -2.5e3, "x\u00e9"]}"#.utf8)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0: bytes = (0..<Int(next() % 40)).map { _ in UInt8(truncatingIfNeeded: next()) }
            case 1: bytes = Array((0..<Int(next() % 24)).map { _ in tokens[Int(next() % UInt64(tokens.count))] }.joined().utf8)
            default:
                bytes = real
                for _ in 0..<Int(next() % 4 + 1) {
                    let i = Int(next() % UInt64(bytes.count))
                    switch next() % 3 {
                    case 0: bytes[i] = UInt8(truncatingIfNeeded: next())
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(UInt8(truncatingIfNeeded: next()), at: i)
                    }
                    if bytes.isEmpty { bytes = [0x20] }
                }
            }
            guard let value = try? JSONParser.parse(bytes) else { continue }
            parsed += 1
            #expect(try JSONParser.parse(value.encoded) == value, "\(bytes)")
        }
        #expect(parsed > 100, "the garbage should sometimes be JSON: \(parsed)")
    }
}
