/// A stack of equally sized single-channel images (the pages of a multi-page TIFF), held as `Float`.
///
/// Pixels are page-major, then row-major: pixel `(x, y)` of page `p` is
/// `pixels[(p * height + y) * width + x]`. Values are the file's raw sample values (an 8-bit file gives
/// 0...255, a 16-bit file 0...65535, a float file its floats); `normalized()` maps them to [0, 1].
///
/// ```swift
/// let volume = try ImageStack.read(from: URL(fileURLWithPath: "train-volume.tif"))
/// let first = volume.page(0)                 // width * height floats
/// try volume.normalized().write(to: URL(fileURLWithPath: "copy.tif"), format: .float32)
/// ```
public struct ImageStack: Equatable, Sendable {
    /// The sample type a stack was read from, or is to be written as.
    public enum SampleFormat: String, Sendable, Equatable, CaseIterable {
        /// 8-bit unsigned integer samples (0...255).
        case uint8
        /// 16-bit unsigned integer samples (0...65535).
        case uint16
        /// 32-bit IEEE floating-point samples.
        case float32
        /// 32-bit unsigned integer samples (0...4294967295): label stacks such as `unet predict
        /// --instances` writes. Read as Float, exact up to 2^24.
        case uint32

        /// Bits per sample in the file.
        public var bitsPerSample: Int {
            switch self {
            case .uint8: return 8
            case .uint16: return 16
            case .float32, .uint32: return 32
            }
        }

        /// Bytes per sample in the file.
        public var bytesPerSample: Int { bitsPerSample / 8 }

        /// The largest raw value of an integer format (255, 65535 or 4294967295); 1 for float.
        public var maxValue: Float {
            switch self {
            case .uint8: return 255
            case .uint16: return 65535
            case .uint32: return 4_294_967_295
            case .float32: return 1
            }
        }
    }

    /// Width of every page, in pixels.
    public var width: Int
    /// Height of every page, in pixels.
    public var height: Int
    /// The number of pages.
    public var pages: Int
    /// All pixels, page-major then row-major (`pages * height * width` values).
    public var pixels: [Float]
    /// The sample format the pixels came from (or `.float32` for computed stacks).
    public var format: SampleFormat

    /// Creates a stack from raw pixels (`pages * height * width` values, page-major then row-major).
    public init(width: Int, height: Int, pages: Int, pixels: [Float], format: SampleFormat = .float32) {
        precondition(width >= 0 && height >= 0 && pages >= 0, "ImageStack: negative extent")
        precondition(pixels.count == width * height * pages,
                     "ImageStack: \(pages) pages of \(width) x \(height) need \(width * height * pages) pixels, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pages = pages
        self.pixels = pixels
        self.format = format
    }

    /// Creates an 8-bit stack from pages of bytes (each `width * height` values, row-major).
    public init(width: Int, height: Int, bytePages: [[UInt8]]) {
        var pixels = [Float]()
        pixels.reserveCapacity(width * height * bytePages.count)
        for (i, page) in bytePages.enumerated() {
            precondition(page.count == width * height,
                         "ImageStack: page \(i) has \(page.count) bytes, expected \(width * height)")
            pixels.append(contentsOf: page.lazy.map { Float($0) })
        }
        self.init(width: width, height: height, pages: bytePages.count, pixels: pixels, format: .uint8)
    }

    /// The number of pixels in one page (`width * height`).
    public var pixelsPerPage: Int { width * height }

    /// The range of `pixels` that holds page `index`.
    public func pageRange(_ index: Int) -> Range<Int> {
        precondition(index >= 0 && index < pages, "ImageStack: page \(index) out of 0..<\(pages)")
        return index * pixelsPerPage ..< (index + 1) * pixelsPerPage
    }

    /// The pixels of page `index`, row-major (`width * height` values).
    public func page(_ index: Int) -> [Float] { Array(pixels[pageRange(index)]) }

    /// Replaces the pixels of page `index` with `values` (`width * height` values, row-major).
    public mutating func setPage(_ index: Int, _ values: [Float]) {
        precondition(values.count == pixelsPerPage, "ImageStack.setPage: \(values.count) values, expected \(pixelsPerPage)")
        pixels.replaceSubrange(pageRange(index), with: values)
    }

    /// The value of pixel `(x, y)` on page `page`.
    public subscript(page page: Int, y y: Int, x x: Int) -> Float {
        get { pixels[(page * height + y) * width + x] }
        set { pixels[(page * height + y) * width + x] = newValue }
    }

    /// The smallest and largest pixel value (ignoring NaN); `nil` for an empty stack.
    public var valueRange: ClosedRange<Float>? {
        var lo = Float.infinity, hi = -Float.infinity
        for v in pixels where !v.isNaN {
            if v < lo { lo = v }
            if v > hi { hi = v }
        }
        return lo <= hi ? lo...hi : nil
    }

    /// Throws `ISBIDatasetError.nonFiniteIntensity` naming `file`, the page and the position of the
    /// first NaN or infinite pixel (only float stacks can hold one).
    public func requireFiniteIntensities(file: String) throws {
        guard format == .float32 else { return }
        let pageSize = width * height
        guard let i = pixels.firstIndex(where: { !$0.isFinite }) else { return }
        throw ISBIDatasetError.nonFiniteIntensity(file: file, page: i / pageSize, value: pixels[i],
                                                  x: i % pageSize % width, y: i % pageSize / width)
    }

    /// The stack with values mapped to [0, 1], as `.float32`.
    ///
    /// Integer formats are divided by their full range (255 or 65535), so a given raw value always maps to
    /// the same normalized value. A float stack already within [0, 1] is returned unchanged; otherwise it
    /// is rescaled linearly from its own minimum and maximum (a constant stack becomes all zeros).
    public func normalized() -> ImageStack {
        var out = self
        out.format = .float32
        let normalization = IntensityNormalization(format: format, range: format == .float32 ? valueRange : nil)
        out.pixels.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
        return out
    }
}

/// The map of a stack's raw values to [0, 1] that `ImageStack.normalized()` applies, kept apart so
/// that a stack read page by page (`TIFFPageReader`) is normalized exactly alike.
public struct IntensityNormalization: Sendable, Equatable {
    /// Subtracted first.
    public var offset: Float
    /// Then multiplied.
    public var scale: Float

    /// Integer formats: divide by 255 or 65535. Float: none when `range` lies within [0, 1] (or is
    /// nil), else `(v - min) / (max - min)` (0 for a constant stack).
    public init(format: ImageStack.SampleFormat, range: ClosedRange<Float>?) {
        switch format {
        case .uint8, .uint16, .uint32:
            offset = 0
            scale = 1 / format.maxValue
        case .float32:
            guard let range, range.lowerBound < 0 || range.upperBound > 1 else {
                offset = 0
                scale = 1
                return
            }
            let span = range.upperBound - range.lowerBound
            offset = range.lowerBound
            scale = span > 0 ? 1 / span : 0
        }
    }

    /// The normalization of the whole stack `reader` reads; a float stack is read once for its range.
    public init(of reader: TIFFPageReader) throws {
        var range: ClosedRange<Float>? = nil
        if reader.format == .float32 {
            var lo = Float.infinity, hi = -Float.infinity
            for page in 0..<reader.pages {
                for v in try reader.readPage(page) where !v.isNaN {
                    lo = min(lo, v)
                    hi = max(hi, v)
                }
            }
            range = lo <= hi ? lo...hi : nil
        }
        self.init(format: reader.format, range: range)
    }

    /// Maps `values` in place.
    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        if offset == 0 && scale == 1 { return }
        if offset == 0 {
            for i in values.indices { values[i] *= scale }
        } else {
            for i in values.indices { values[i] = (values[i] - offset) * scale }
        }
    }
}
