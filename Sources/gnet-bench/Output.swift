#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to standard error with one write(2).
func printError(_ text: String) {
    var t = text
    t.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
