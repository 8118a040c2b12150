/// A YAML document built from values, for `rdf.yaml`. Mappings keep their keys' order; every string
/// is written double-quoted with escapes, so no value can turn into another type (`"yes"`, `"1e3"`,
/// `"null"`), a comment (`#`), an anchor (`&`) or a structure (`: `, `- `), whatever it holds.
package indirect enum YAMLValue: Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case list([YAMLValue])
    case map([(String, YAMLValue)])

    package static func == (a: YAMLValue, b: YAMLValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        case let (.list(x), .list(y)): return x == y
        case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The document: block style, two spaces per level, lists of scalars in flow style (`[1, 2]`),
    /// ending with a newline.
    package var document: String {
        var out = ""
        switch self {
        case .map(let pairs) where !pairs.isEmpty: YAMLValue.emit(pairs, indent: 0, into: &out)
        case .list(let items) where !items.isEmpty && !isScalarList: YAMLValue.emit(items, indent: 0, into: &out)
        default: out = scalarText + "\n"
        }
        return out
    }

    private var isScalar: Bool {
        switch self {
        case .list(let items): return items.isEmpty
        case .map(let pairs): return pairs.isEmpty
        default: return true
        }
    }

    private var isScalarList: Bool {
        if case .list(let items) = self { return items.allSatisfy(\.isScalar) }
        return false
    }

    /// The value on one line (scalars, empty collections, lists of scalars).
    private var scalarText: String {
        switch self {
        case .string(let s): return YAMLValue.quoted(s)
        case .int(let i): return String(i)
        case .double(let d): return YAMLValue.number(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .list(let items): return "[" + items.map(\.scalarText).joined(separator: ", ") + "]"
        case .map(let pairs): return pairs.isEmpty ? "{}" : "{" + pairs.map { "\(YAMLValue.key($0.0)): \($0.1.scalarText)" }.joined(separator: ", ") + "}"
        }
    }

    private static func emit(_ pairs: [(String, YAMLValue)], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for (k, v) in pairs {
            out += pad + key(k) + ":"
            appendValue(v, indent: indent, into: &out)
        }
    }

    private static func emit(_ items: [YAMLValue], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item {
            case .map(let pairs) where !pairs.isEmpty:
                // The first pair follows "- "; the others line up with it.
                var nested = ""
                emit(pairs, indent: indent + 2, into: &nested)
                out += pad + "- " + nested.dropFirst(indent + 2)
            case .list(let inner) where !item.isScalarList && !inner.isEmpty:
                out += pad + "-\n"
                emit(inner, indent: indent + 2, into: &out)
            default:
                out += pad + "- " + item.scalarText + "\n"
            }
        }
    }

    /// After "key:": a scalar on the same line, a collection on the following, indented.
    private static func appendValue(_ v: YAMLValue, indent: Int, into out: inout String) {
        switch v {
        case .map(let pairs) where !pairs.isEmpty:
            out += "\n"
            emit(pairs, indent: indent + 2, into: &out)
        case .list(let items) where !v.isScalarList && !items.isEmpty:
            out += "\n"
            emit(items, indent: indent + 2, into: &out)
        default:
            out += " " + v.scalarText + "\n"
        }
    }

    /// Keys we write are identifiers; anything else is quoted like a value.
    private static func key(_ k: String) -> String {
        let plain = !k.isEmpty && k.unicodeScalars.allSatisfy { ($0.value >= 0x61 && $0.value <= 0x7A) || ($0.value >= 0x41 && $0.value <= 0x5A)
            || ($0.value >= 0x30 && $0.value <= 0x39) || $0 == "_" } && !(k.unicodeScalars.first!.value >= 0x30 && k.unicodeScalars.first!.value <= 0x39)
        let reserved: Set<String> = ["y", "Y", "n", "N", "yes", "no", "on", "off", "true", "false", "null", "Yes", "No", "On", "Off",
                                     "True", "False", "Null", "YES", "NO", "ON", "OFF", "TRUE", "FALSE", "NULL"]
        return plain && !reserved.contains(k) ? k : quoted(k)
    }

    /// A double-quoted YAML string: `\` and `"` escaped, and every character outside YAML's printable
    /// set (C0 and C1 controls, DEL, U+2028/U+2029 line separators, U+FEFF, U+FFFE/U+FFFF) as `\uXXXX`.
    package static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                let v = scalar.value
                let printable = (v >= 0x20 && v <= 0x7E) || (v >= 0xA0 && v <= 0xD7FF && v != 0x2028 && v != 0x2029)
                    || (v >= 0xE000 && v <= 0xFFFD && v != 0xFEFF) || v >= 0x10000
                if printable {
                    out.unicodeScalars.append(scalar)
                } else if v <= 0xFFFF {
                    out += "\\u" + hex(v, digits: 4)
                } else {
                    out += "\\U" + hex(v, digits: 8)
                }
            }
        }
        return out + "\""
    }

    /// A float YAML 1.1 and 1.2 readers both take as a float: shortest round-trip digits, always with
    /// a `.` before any exponent (`1.0e-05`, not `1e-05`, which YAML 1.1 reads as a string).
    package static func number(_ d: Double) -> String {
        guard d.isFinite else { return d.isNaN ? ".nan" : (d > 0 ? ".inf" : "-.inf") }
        var text = "\(d)"
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            if !text[..<e].contains(".") { text.insert(contentsOf: ".0", at: e) }
        } else if !text.contains(".") {
            text += ".0"
        }
        return text
    }

    private static func hex(_ v: UInt32, digits: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }
}
