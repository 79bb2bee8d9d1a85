extension Double {
    /// The value rounded to one decimal, as the daemon's messages and gnetctl's tables show
    /// durations and sizes: "12.3", "0.0", "-0.5" (what `%.1f` printed, without Foundation).
    /// Values too large for that, infinities and NaN are shown as Swift prints them.
    var oneDecimal: String {
        let tenths = (self * 10).rounded()
        guard tenths.isFinite, tenths.magnitude < 9e18 else { return String(self) }
        let t = Int64(tenths)
        return (t < 0 ? "-" : "") + "\(t.magnitude / 10).\(t.magnitude % 10)"
    }
}
