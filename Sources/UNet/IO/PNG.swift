import CPNG
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error encoding, decoding, reading or writing a PNG, with libpng's own message when it has one.
public struct PNGError: Error, CustomStringConvertible, Sendable {
    /// The file concerned, or `nil` for in-memory encoding and decoding.
    public let path: String?
    /// What went wrong.
    public let message: String

    /// Creates an error.
    public init(path: String?, message: String) {
        self.path = path
        self.message = message
    }

    /// `"<path>: <message>"`, or the message alone.
    public var description: String { path.map { "\($0): \(message)" } ?? message }
}

/// An 8-bit image decoded from a PNG: gray (1 channel) or RGB (3 channels), interleaved, row-major.
public struct PNGImage: Equatable, Sendable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// 1 (gray) or 3 (RGB).
    public var channels: Int
    /// `width * height * channels` bytes, interleaved, row-major.
    public var pixels: [UInt8]

    /// Creates an image; `pixels` must hold `width * height * channels` bytes.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "PNGImage: channels must be 1 or 3")
        precondition(pixels.count == width * height * channels, "PNGImage: pixel count does not match the size")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Writing (and reading back) 8-bit grayscale and RGB PNGs with libpng's simplified API, for previews:
/// slices, predictions, and predictions overlaid on images.
///
/// ```swift
/// try PNG.write(gray: PNG.bytes(from: slice.image), width: w, height: h, to: url)
/// try PNG.write(rgb: PNG.overlay(image: slice.image, highlight: membraneProbability, width: w, height: h),
///               width: w, height: h, to: overlayURL)
/// ```
public enum PNG {
    /// Encodes 8-bit pixels (`channels` = 1 gray or 3 RGB, interleaved, row-major) as PNG bytes.
    public static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        guard channels == 1 || channels == 3 else { throw PNGError(path: nil, message: "channels must be 1 or 3, got \(channels)") }
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else {
            throw PNGError(path: nil, message: "invalid size \(width) x \(height)")
        }
        guard pixels.count == width * height * channels else {
            throw PNGError(path: nil, message: "\(pixels.count) bytes for \(width) x \(height) x \(channels)")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 1 ? png_uint_32(PNG_FORMAT_GRAY) : png_uint_32(PNG_FORMAT_RGB)
        let stride = png_int_32(width * channels)
        var size: png_alloc_size_t = 0
        let sized = pixels.withUnsafeBytes {
            png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, stride, nil)
        }
        guard sized != 0, size > 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: nil, message: "libpng could not encode the image: \(message)")
        }
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = output.withUnsafeMutableBytes { out in
            pixels.withUnsafeBytes {
                png_image_write_to_memory(&image, out.baseAddress, &size, 0, $0.baseAddress, stride, nil)
            }
        }
        guard written != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: nil, message: "libpng could not encode the image: \(message)")
        }
        output.removeLast(output.count - Int(size))
        return output
    }

    /// Writes an 8-bit grayscale PNG (`width * height` bytes, row-major), atomically.
    public static func write(gray pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
        try writeAtomically(encode(pixels: pixels, width: width, height: height, channels: 1), to: url)
    }

    /// Writes an 8-bit RGB PNG (`width * height * 3` bytes, interleaved RGB, row-major), atomically.
    public static func write(rgb pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
        try writeAtomically(encode(pixels: pixels, width: width, height: height, channels: 3), to: url)
    }

    /// Decodes PNG bytes to 8-bit gray (for gray sources) or RGB (for color sources); alpha is composited
    /// on black, 16-bit samples are reduced to 8.
    public static func decode(_ data: [UInt8]) throws -> PNGImage {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: nil, message: "not a readable PNG: \(message)")
        }
        let color = (image.format & png_uint_32(PNG_FORMAT_FLAG_COLOR)) != 0
        image.format = color ? png_uint_32(PNG_FORMAT_RGB) : png_uint_32(PNG_FORMAT_GRAY)
        let width = Int(image.width), height = Int(image.height), channels = color ? 3 : 1
        let (bytes, overflow) = (width * channels).multipliedReportingOverflow(by: height)
        guard !overflow, bytes <= 1 << 31 else {
            png_image_free(&image)
            throw PNGError(path: nil, message: "PNG too large: \(width) x \(height)")
        }
        var pixels = [UInt8](repeating: 0, count: bytes)
        let finished = data.withUnsafeBytes { _ in
            pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        }
        guard finished != 0 else {
            let message = Self.message(of: &image)
            png_image_free(&image)
            throw PNGError(path: nil, message: "could not decode the PNG: \(message)")
        }
        return PNGImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Reads and decodes a PNG file (see `decode(_:)`).
    public static func read(from url: URL) throws -> PNGImage {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PNGError(path: url.path, message: "cannot read: \(error.localizedDescription)")
        }
        do { return try decode([UInt8](data)) } catch let error as PNGError {
            throw PNGError(path: url.path, message: error.message)
        }
    }

    /// Maps floats to bytes: `range` to 0...255, clamped (NaN becomes 0).
    public static func bytes(from values: [Float], range: ClosedRange<Float> = 0...1) -> [UInt8] {
        let span = range.upperBound - range.lowerBound
        let scale: Float = span > 0 ? 255 / span : 0
        return values.map { v in
            v.isNaN ? 0 : UInt8(min(max((v - range.lowerBound) * scale, 0), 255).rounded())
        }
    }

    /// An RGB overlay: the grayscale `image` (values in [0, 1]) tinted with `color` in proportion to
    /// `highlight` (values in [0, 1], e.g. a membrane probability or a 0/1 mask) times `opacity`.
    /// Returns `width * height * 3` bytes for `write(rgb:width:height:to:)`.
    public static func overlay(image: [Float], highlight: [Float], width: Int, height: Int,
                               color: (red: UInt8, green: UInt8, blue: UInt8) = (255, 40, 40),
                               opacity: Float = 0.5) -> [UInt8] {
        precondition(image.count == width * height && highlight.count == width * height,
                     "PNG.overlay: image and highlight must hold width * height values")
        let tint = [Float(color.red), Float(color.green), Float(color.blue)]
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let g = image[i].isNaN ? 0 : min(max(image[i], 0), 1) * 255
            let h = highlight[i].isNaN ? 0 : min(max(highlight[i], 0), 1)
            let a = h * min(max(opacity, 0), 1)
            for c in 0..<3 {
                out[3 * i + c] = UInt8((g * (1 - a) + tint[c] * a).rounded())
            }
        }
        return out
    }

    // MARK: helpers

    private static func message(of image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "unknown libpng error" : text
    }

    private static func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
        do {
            try AtomicFileWriter.write(bytes, to: url.path)
        } catch let error as FileWriteError {
            throw PNGError(path: url.path, message: error.reason)
        }
    }
}
