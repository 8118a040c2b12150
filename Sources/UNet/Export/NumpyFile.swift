/// The bytes of a NumPy `.npy` file (format version 1.0) holding a little-endian float32 array in C
/// order: what bioimage.io packages use for their test tensors and `numpy.load` reads.
///
/// The file is the magic `\x93NUMPY`, the version (1, 0), the header's length as a little-endian
/// UInt16, the header (a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (...), }`
/// padded with spaces and ended by a newline so that the data starts at a multiple of 64 bytes), then
/// the values.
package enum NumpyFile {
    /// The magic string that starts every `.npy` file.
    package static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The `.npy` file of `values` with shape `shape` (row-major, last axis fastest).
    ///
    /// - Throws: `NumpyFileError` when the shape has more than 64 axes or a negative extent, or does
    ///   not hold exactly `values.count` values.
    package static func float32(_ values: [Float], shape: [Int]) throws -> [UInt8] {
        guard shape.count <= maximumRank else { throw NumpyFileError.tooManyAxes(shape.count) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw NumpyFileError.negativeExtent(shape) }
        guard elementCount(shape) == values.count else { throw NumpyFileError.shapeMismatch(shape: shape, values: values.count) }
        var bytes = header(descr: "<f4", shape: shape)
        bytes.reserveCapacity(bytes.count + 4 * values.count)
        for v in values {
            let bits = v.bitPattern
            bytes += [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                      UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
        }
        return bytes
    }

    /// The most axes NumPy arrays have (`numpy.MAXDIMS`); it also keeps the header under 64 KiB.
    package static let maximumRank = 64

    /// The product of the extents, or nil when it overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Magic, version, length and the padded header dict, a multiple of 64 bytes.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dimensions = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dimensions), }".utf8)
        let prefix = magic.count + 2 + 2
        let padded = (prefix + dict.count + 1 + 63) / 64 * 64
        dict += Array(repeating: UInt8(ascii: " "), count: padded - prefix - dict.count - 1)
        dict.append(UInt8(ascii: "\n"))
        return magic + [1, 0, UInt8(dict.count & 0xFF), UInt8(dict.count >> 8)] + dict
    }
}

/// An array that cannot be written as `.npy`.
package enum NumpyFileError: Error, CustomStringConvertible, Equatable {
    /// More axes than NumPy arrays have.
    case tooManyAxes(Int)
    /// A shape with a negative extent.
    case negativeExtent([Int])
    /// The shape's element count differs from the number of values.
    case shapeMismatch(shape: [Int], values: Int)

    package var description: String {
        switch self {
        case let .tooManyAxes(rank):
            return "cannot write a .npy file with \(rank) axes: NumPy arrays have at most \(NumpyFile.maximumRank)"
        case let .negativeExtent(shape):
            return "cannot write a .npy file of shape \(shape): negative extent"
        case let .shapeMismatch(shape, values):
            return "cannot write a .npy file of shape \(shape) from \(values) values: the shape holds \(NumpyFile.elementCount(shape).map(String.init) ?? "more than Int.max")"
        }
    }
}
