/// The protocol-buffers wire format, write side only: just what the ONNX export needs (varints,
/// 32-bit little-endian floats, length-delimited strings, bytes and nested messages, packed
/// repeated fields). Written from the published encoding rules; fields are emitted in the order
/// they are written.
package struct ProtobufWriter {
    /// The encoded message so far.
    package private(set) var bytes: [UInt8] = []

    /// An empty message.
    package init() {}

    /// The wire types a field's tag announces.
    package enum WireType: UInt8 {
        /// int32, int64, uint64, bool, enum.
        case varint = 0
        /// Strings, bytes, nested messages, packed repeated fields.
        case lengthDelimited = 2
        /// float, fixed32.
        case fixed32 = 5
    }

    /// Appends `value` as a base-128 varint (7 bits a byte, least significant group first, high bit
    /// set on every byte but the last).
    package mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Appends a field's tag: `(field << 3) | wire type`.
    package mutating func appendTag(_ field: Int, _ wireType: WireType) {
        precondition(field >= 1 && field < 1 << 29, "ProtobufWriter: field number \(field) out of range")
        appendVarint(UInt64(field) << 3 | UInt64(wireType.rawValue))
    }

    /// An `int64` (or `int32`, enum) field; negative values take ten bytes (two's complement).
    package mutating func write(_ field: Int, int64 value: Int64) {
        appendTag(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    /// A `float` field: four little-endian bytes of the IEEE 754 value.
    package mutating func write(_ field: Int, float value: Float) {
        appendTag(field, .fixed32)
        appendLittleEndian(value.bitPattern)
    }

    /// A `string` field, UTF-8.
    package mutating func write(_ field: Int, string value: String) {
        write(field, bytes: Array(value.utf8))
    }

    /// A `bytes` field.
    package mutating func write(_ field: Int, bytes value: [UInt8]) {
        appendTag(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A nested message field.
    package mutating func write(_ field: Int, message: ProtobufWriter) {
        write(field, bytes: message.bytes)
    }

    /// A nested message field built by `body`.
    package mutating func writeMessage(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        write(field, message: nested)
    }

    /// A packed repeated `int64` field: one length-delimited run of varints (omitted when empty).
    package mutating func writePacked(_ field: Int, int64 values: [Int64]) {
        guard !values.isEmpty else { return }
        var run = ProtobufWriter()
        for v in values { run.appendVarint(UInt64(bitPattern: v)) }
        write(field, bytes: run.bytes)
    }

    /// A packed repeated `float` field: one length-delimited run of 4-byte little-endian values
    /// (omitted when empty).
    package mutating func writePacked(_ field: Int, float values: [Float]) {
        guard !values.isEmpty else { return }
        appendTag(field, .lengthDelimited)
        appendVarint(UInt64(values.count * 4))
        appendLittleEndian(values)
    }

    /// Appends the values as little-endian IEEE 754 floats with no tag or length.
    package mutating func appendLittleEndian(_ values: [Float]) {
        bytes.reserveCapacity(bytes.count + values.count * 4)
        for v in values { appendLittleEndian(v.bitPattern) }
    }

    private mutating func appendLittleEndian(_ word: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: word))
        bytes.append(UInt8(truncatingIfNeeded: word >> 8))
        bytes.append(UInt8(truncatingIfNeeded: word >> 16))
        bytes.append(UInt8(truncatingIfNeeded: word >> 24))
    }
}
