import CTIFF
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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

        /// Bits per sample in the file.
        public var bitsPerSample: Int {
            switch self {
            case .uint8: return 8
            case .uint16: return 16
            case .float32: return 32
            }
        }

        /// Bytes per sample in the file.
        public var bytesPerSample: Int { bitsPerSample / 8 }

        /// The largest raw value of an integer format (255 or 65535); 1 for float.
        public var maxValue: Float {
            switch self {
            case .uint8: return 255
            case .uint16: return 65535
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

    /// The stack with values mapped to [0, 1], as `.float32`.
    ///
    /// Integer formats are divided by their full range (255 or 65535), so a given raw value always maps to
    /// the same normalized value. A float stack already within [0, 1] is returned unchanged; otherwise it
    /// is rescaled linearly from its own minimum and maximum (a constant stack becomes all zeros).
    public func normalized() -> ImageStack {
        var out = self
        out.format = .float32
        switch format {
        case .uint8, .uint16:
            let scale = 1 / format.maxValue
            out.pixels.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] *= scale }
            }
        case .float32:
            guard let range = valueRange, range.lowerBound < 0 || range.upperBound > 1 else { return out }
            let span = range.upperBound - range.lowerBound
            let scale: Float = span > 0 ? 1 / span : 0
            let lo = range.lowerBound
            out.pixels.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = (p[i] - lo) * scale }
            }
        }
        return out
    }
}

/// Limits the TIFF reader enforces before allocating anything, so a hostile header cannot make it
/// allocate from unchecked sizes.
public struct TIFFReadLimits: Sendable, Equatable {
    /// The largest width or height accepted, per page. Default 65536.
    public var maxSide: Int
    /// The largest total size of the decoded stack as `Float`s, in bytes (`4 * width * height * pages`).
    /// Default 4 GiB.
    public var maxTotalBytes: Int

    /// Creates limits.
    public init(maxSide: Int = 65536, maxTotalBytes: Int = 4 << 30) {
        self.maxSide = maxSide
        self.maxTotalBytes = maxTotalBytes
    }

    /// The default limits (65536 per side, 4 GiB in total).
    public static let `default` = TIFFReadLimits()
}

/// Compression for writing a TIFF stack.
public enum TIFFCompression: String, Sendable, Equatable, CaseIterable {
    /// No compression (the ISBI challenge's layout).
    case none
    /// LZW with a horizontal (integer) or floating-point predictor.
    case lzw
    /// Deflate (zlib) with a horizontal (integer) or floating-point predictor.
    case deflate
    /// PackBits run-length encoding.
    case packBits
}

// MARK: - Reading

extension ImageStack {
    /// Reads every page of a multi-page grayscale TIFF.
    ///
    /// Accepts 8- and 16-bit unsigned integer and 32-bit float samples (one sample per pixel,
    /// MinIsBlack or MinIsWhite, the latter inverted so that larger is brighter), in strips or tiles,
    /// with any compression libtiff decodes. All pages must have the same size and sample format.
    ///
    /// - Throws: `TIFFError` naming the file, the page and the problem (missing file, not a TIFF, truncated,
    ///   no pages, RGB/palette, unsupported bit depth or sample format, pages of different sizes, dimensions
    ///   beyond `limits`), with libtiff's own messages attached. Nothing is printed to stderr.
    public static func read(from url: URL, limits: TIFFReadLimits = .default) throws -> ImageStack {
        try TIFFStackReader(path: url.path, limits: limits).read()
    }

    /// Reads every page of a multi-page grayscale TIFF at `path`. See `read(from:limits:)`.
    public static func read(path: String, limits: TIFFReadLimits = .default) throws -> ImageStack {
        try TIFFStackReader(path: path, limits: limits).read()
    }
}

/// What one directory (page) holds, as far as the reader cares.
private struct TIFFPageInfo {
    var width: Int
    var height: Int
    var format: ImageStack.SampleFormat
    var invert: Bool
    var tiled: Bool
}

private struct TIFFStackReader {
    let path: String
    let limits: TIFFReadLimits

    func fail(_ kind: TIFFError.Kind, page: Int? = nil, _ message: String,
              _ sink: TIFFMessageSink? = nil) -> TIFFError {
        TIFFError(kind, path: path, page: page, message: message, libtiffMessages: sink?.messages ?? [])
    }

    func read() throws -> ImageStack {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw fail(.cannotOpen, "cannot open: \(errnoDescription(code))")
        }
        do {
            try checkHeader(fd: fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        // "m": no memory mapping, so a file shortened under us is a read error, not SIGBUS.
        let maxAlloc = max(256 << 20, min(limits.maxTotalBytes, Int(Int32.max)))
        let (opened, sink) = LibTIFFHandle.open(fd: fd, path: path, mode: "rm", maxSingleAllocation: maxAlloc)
        guard let handle = opened else {
            throw fail(classify(sink), "cannot read the first directory", sink)
        }
        defer { handle.close() }
        let tif = handle.tif

        let directoryCount = Int(TIFFNumberOfDirectories(tif))
        if sink.errorCount > 0 {
            throw fail(classify(sink), "the chain of directories is broken after \(directoryCount) page(s)", sink)
        }
        guard directoryCount > 0 else { throw fail(.empty, "contains no pages", sink) }

        var stack: ImageStack? = nil
        for page in 0..<directoryCount {
            if page > 0 {
                guard TIFFReadDirectory(tif) == 1, sink.errorCount == 0 else {
                    throw fail(classify(sink), page: page, "cannot read the directory", sink)
                }
            }
            let info = try pageInfo(handle, page: page)
            if let first = stack {
                if info.width != first.width || info.height != first.height {
                    throw fail(.inconsistentPages, page: page,
                               "page size \(info.width) x \(info.height) differs from page 0's \(first.width) x \(first.height)", sink)
                }
                if info.format != first.format {
                    throw fail(.inconsistentPages, page: page,
                               "sample format \(info.format.rawValue) differs from page 0's \(first.format.rawValue)", sink)
                }
            } else {
                // The whole stack's size is checked before anything is allocated.
                let (pixelsPerPage, o1) = info.width.multipliedReportingOverflow(by: info.height)
                let (total, o2) = pixelsPerPage.multipliedReportingOverflow(by: directoryCount)
                let (bytes, o3) = total.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
                if o1 || o2 || o3 || bytes > limits.maxTotalBytes {
                    throw fail(.absurdDimensions, page: page,
                               "\(directoryCount) page(s) of \(info.width) x \(info.height) would need more than the limit of \(limits.maxTotalBytes) bytes", sink)
                }
                stack = ImageStack(width: info.width, height: info.height, pages: directoryCount,
                                   pixels: [Float](repeating: 0, count: total), format: info.format)
            }
            let offset = page * info.width * info.height
            try stack!.pixels.withUnsafeMutableBufferPointer { buffer in
                let destination = buffer.baseAddress! + offset
                if info.tiled {
                    try readTiles(handle, info: info, page: page, into: destination)
                } else {
                    try readStrips(handle, info: info, page: page, into: destination)
                }
            }
            if sink.errorCount > 0 {
                throw fail(classify(sink), page: page, "errors while decoding the pixel data", sink)
            }
        }
        return stack!
    }

    /// Checks the 8-byte (classic) or 16-byte (BigTIFF) header ourselves, so the common problems get a
    /// precise message: an empty file, something that is not a TIFF, a cut header, no first directory.
    func checkHeader(fd: Int32) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail(.cannotOpen, "cannot stat: \(errnoDescription())") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw fail(.cannotOpen, "is a directory, not a file") }
        let size = Int(st.st_size)
        if size == 0 { throw fail(.empty, "file is empty (0 bytes)") }
        var header = [UInt8](repeating: 0, count: 16)
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 16, 0) }
        guard got >= 0 else { throw fail(.cannotOpen, "cannot read: \(errnoDescription())") }
        let n = Int(got)
        let shown = header.prefix(min(n, 8)).map { String(format: "%02X", $0) }.joined(separator: " ")
        let little: Bool
        switch (header[0], header[1]) {
        case (0x49, 0x49) where n >= 2: little = true
        case (0x4D, 0x4D) where n >= 2: little = false
        default:
            throw fail(.notATIFF, "not a TIFF file (no II/MM byte-order mark; starts with \(shown))")
        }
        if n < 4 { throw fail(.truncated, "TIFF header cut short (\(n) of 8 bytes)") }
        func u16(_ i: Int) -> UInt64 {
            little ? UInt64(header[i]) | UInt64(header[i + 1]) << 8 : UInt64(header[i]) << 8 | UInt64(header[i + 1])
        }
        func u32(_ i: Int) -> UInt64 { little ? u16(i) | u16(i + 2) << 16 : u16(i) << 16 | u16(i + 2) }
        func u64(_ i: Int) -> UInt64 { little ? u32(i) | u32(i + 4) << 32 : u32(i) << 32 | u32(i + 4) }
        let version = u16(2)
        let firstDirectory: UInt64
        switch version {
        case 42:
            if n < 8 { throw fail(.truncated, "TIFF header cut short (\(n) of 8 bytes)") }
            firstDirectory = u32(4)
        case 43:
            if n < 16 { throw fail(.truncated, "BigTIFF header cut short (\(n) of 16 bytes)") }
            firstDirectory = u64(8)
        default:
            throw fail(.notATIFF, "not a TIFF file (byte-order mark followed by version \(version), expected 42 or 43)")
        }
        if firstDirectory == 0 { throw fail(.empty, "contains no pages (the header's first-directory offset is 0)") }
        if firstDirectory >= UInt64(size) {
            throw fail(.truncated, "truncated: the first directory is at offset \(firstDirectory) but the file has only \(size) bytes")
        }
    }

    /// Maps libtiff's messages to an error kind: I/O shortfalls mean a truncated file, the rest corruption.
    func classify(_ sink: TIFFMessageSink) -> TIFFError.Kind {
        let text = sink.messages.joined(separator: "\n").lowercased()
        let truncationHints = ["read error", "cannot read", "can not read", "seek error", "io error",
                               "unexpected end", "past end", "beyond end", "truncated", "not enough data",
                               "end of file", "short read", "got ", "error fetching directory"]
        return truncationHints.contains(where: text.contains) ? .truncated : .corrupt
    }

    func pageInfo(_ h: LibTIFFHandle, page: Int) throws -> TIFFPageInfo {
        let sink = h.sink
        guard let w32 = h.u32(TIFFTAG_IMAGEWIDTH), let h32 = h.u32(TIFFTAG_IMAGELENGTH) else {
            throw fail(.corrupt, page: page, "the directory has no image width or length", sink)
        }
        let width = Int(w32), height = Int(h32)
        if width == 0 || height == 0 {
            throw fail(.absurdDimensions, page: page, "dimensions \(width) x \(height) (a side is zero)", sink)
        }
        if width > limits.maxSide || height > limits.maxSide {
            throw fail(.absurdDimensions, page: page,
                       "dimensions \(width) x \(height) exceed the limit of \(limits.maxSide) pixels per side", sink)
        }
        let samples = Int(h.u16Defaulted(TIFFTAG_SAMPLESPERPIXEL) ?? 1)
        let photometric = h.u16(TIFFTAG_PHOTOMETRIC).map(Int32.init)
        switch photometric {
        case PHOTOMETRIC_RGB?:
            throw fail(.notGrayscale, page: page,
                       "RGB color image (\(samples) samples per pixel) where grayscale is expected", sink)
        case PHOTOMETRIC_PALETTE?:
            throw fail(.notGrayscale, page: page, "palette-color image where grayscale is expected", sink)
        case PHOTOMETRIC_YCBCR?:
            throw fail(.notGrayscale, page: page, "YCbCr color image where grayscale is expected", sink)
        case PHOTOMETRIC_SEPARATED?:
            throw fail(.notGrayscale, page: page, "separated (CMYK) color image where grayscale is expected", sink)
        case nil, PHOTOMETRIC_MINISBLACK?, PHOTOMETRIC_MINISWHITE?:
            break
        case let other?:
            throw fail(.notGrayscale, page: page,
                       "photometric interpretation \(other) where grayscale (MinIsBlack/MinIsWhite) is expected", sink)
        }
        if samples != 1 {
            throw fail(.notGrayscale, page: page,
                       "\(samples) samples per pixel where grayscale (1 sample per pixel) is expected", sink)
        }
        let bits = Int(h.u16Defaulted(TIFFTAG_BITSPERSAMPLE) ?? 1)
        let sampleFormat = Int32(h.u16Defaulted(TIFFTAG_SAMPLEFORMAT) ?? UInt16(SAMPLEFORMAT_UINT))
        let format: ImageStack.SampleFormat
        switch (bits, sampleFormat) {
        case (8, SAMPLEFORMAT_UINT), (8, SAMPLEFORMAT_VOID): format = .uint8
        case (16, SAMPLEFORMAT_UINT), (16, SAMPLEFORMAT_VOID): format = .uint16
        case (32, SAMPLEFORMAT_IEEEFP): format = .float32
        default:
            let kindName: String
            switch sampleFormat {
            case SAMPLEFORMAT_UINT: kindName = "unsigned integer"
            case SAMPLEFORMAT_INT: kindName = "signed integer"
            case SAMPLEFORMAT_IEEEFP: kindName = "floating-point"
            case SAMPLEFORMAT_VOID: kindName = "untyped"
            default: kindName = "sample format \(sampleFormat)"
            }
            throw fail(.unsupportedFormat, page: page,
                       "unsupported bit depth \(bits) (\(kindName) samples); supported: 8- or 16-bit unsigned integer, 32-bit float",
                       sink)
        }
        let invert = photometric == PHOTOMETRIC_MINISWHITE
        if invert && format == .float32 {
            throw fail(.unsupportedFormat, page: page, "MinIsWhite float samples are not supported", sink)
        }
        return TIFFPageInfo(width: width, height: height, format: format, invert: invert,
                            tiled: TIFFIsTiled(h.tif) != 0)
    }

    func readStrips(_ h: LibTIFFHandle, info: TIFFPageInfo, page: Int,
                    into destination: UnsafeMutablePointer<Float>) throws {
        let tif = h.tif
        let rowBytes = info.width * info.format.bytesPerSample
        let rowsPerStrip = min(Int(h.u32Defaulted(TIFFTAG_ROWSPERSTRIP) ?? UInt32.max), info.height)
        guard rowsPerStrip > 0 else { throw fail(.corrupt, page: page, "RowsPerStrip is 0", h.sink) }
        let stripCount = (info.height + rowsPerStrip - 1) / rowsPerStrip
        guard Int(TIFFNumberOfStrips(tif)) >= stripCount else {
            throw fail(.corrupt, page: page,
                       "the directory lists \(TIFFNumberOfStrips(tif)) strip(s), \(stripCount) are needed", h.sink)
        }
        let stripBytes = rowsPerStrip * rowBytes
        guard Int(TIFFStripSize(tif)) >= stripBytes else {
            throw fail(.corrupt, page: page, "inconsistent strip size", h.sink)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: stripBytes, alignment: 16)
        defer { buffer.deallocate() }
        for strip in 0..<stripCount {
            let row0 = strip * rowsPerStrip
            let rows = min(rowsPerStrip, info.height - row0)
            let needed = rows * rowBytes
            let got = Int(TIFFReadEncodedStrip(tif, UInt32(strip), buffer, tmsize_t(needed)))
            if got < needed {
                throw fail(classify(h.sink) == .corrupt && got >= 0 ? .corrupt : .truncated, page: page,
                           "strip \(strip) could not be read (\(max(got, 0)) of \(needed) bytes)", h.sink)
            }
            convert(buffer, count: rows * info.width, format: info.format, invert: info.invert,
                    to: destination + row0 * info.width)
        }
    }

    func readTiles(_ h: LibTIFFHandle, info: TIFFPageInfo, page: Int,
                   into destination: UnsafeMutablePointer<Float>) throws {
        let tif = h.tif
        guard let tw32 = h.u32(TIFFTAG_TILEWIDTH), let th32 = h.u32(TIFFTAG_TILELENGTH), tw32 > 0, th32 > 0 else {
            throw fail(.corrupt, page: page, "tiled page without a valid tile width and length", h.sink)
        }
        let tileWidth = Int(tw32), tileHeight = Int(th32)
        if tileWidth > limits.maxSide || tileHeight > limits.maxSide {
            throw fail(.absurdDimensions, page: page,
                       "tile size \(tileWidth) x \(tileHeight) exceeds the limit of \(limits.maxSide) pixels per side", h.sink)
        }
        let tileBytes = tileWidth * tileHeight * info.format.bytesPerSample
        if tileBytes > limits.maxTotalBytes {
            throw fail(.absurdDimensions, page: page, "tile size \(tileWidth) x \(tileHeight) exceeds the memory limit", h.sink)
        }
        guard Int(TIFFTileSize(tif)) >= tileBytes else {
            throw fail(.corrupt, page: page, "inconsistent tile size", h.sink)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: tileBytes, alignment: 16)
        defer { buffer.deallocate() }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tileWidth * tileHeight)
        defer { scratch.deallocate() }
        for y0 in stride(from: 0, to: info.height, by: tileHeight) {
            for x0 in stride(from: 0, to: info.width, by: tileWidth) {
                let tile = TIFFComputeTile(tif, UInt32(x0), UInt32(y0), 0, 0)
                let got = Int(TIFFReadEncodedTile(tif, tile, buffer, tmsize_t(tileBytes)))
                if got < tileBytes {
                    throw fail(classify(h.sink) == .corrupt && got >= 0 ? .corrupt : .truncated, page: page,
                               "tile \(tile) at (\(x0), \(y0)) could not be read (\(max(got, 0)) of \(tileBytes) bytes)", h.sink)
                }
                convert(buffer, count: tileWidth * tileHeight, format: info.format, invert: info.invert, to: scratch)
                let rows = min(tileHeight, info.height - y0), cols = min(tileWidth, info.width - x0)
                for r in 0..<rows {
                    (destination + (y0 + r) * info.width + x0).update(from: scratch + r * tileWidth, count: cols)
                }
            }
        }
    }

    /// Converts `count` native-endian samples (libtiff has already swapped bytes) to Float.
    func convert(_ source: UnsafeMutableRawPointer, count: Int, format: ImageStack.SampleFormat, invert: Bool,
                 to destination: UnsafeMutablePointer<Float>) {
        switch format {
        case .uint8:
            let s = source.assumingMemoryBound(to: UInt8.self)
            if invert { for i in 0..<count { destination[i] = Float(255 &- s[i]) } }
            else { for i in 0..<count { destination[i] = Float(s[i]) } }
        case .uint16:
            let s = source.assumingMemoryBound(to: UInt16.self)
            if invert { for i in 0..<count { destination[i] = Float(65535 &- s[i]) } }
            else { for i in 0..<count { destination[i] = Float(s[i]) } }
        case .float32:
            destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        }
    }
}

// MARK: - Writing

extension ImageStack {
    /// Writes the stack as a multi-page grayscale TIFF, atomically (a temporary file in the same folder,
    /// renamed over `url` once complete, so readers never see a half-written file).
    ///
    /// - Parameters:
    ///   - format: the sample format of the file; `nil` means the stack's own `format`. Integer formats
    ///     take the raw values rounded and clamped to their range (NaN becomes 0), so write a normalized
    ///     stack as `.float32`, or scale it by 255 first for `.uint8`.
    ///   - compression: `.none` by default (the ISBI layout).
    /// - Throws: `TIFFError` of kind `.writeFailed`, with libtiff's messages.
    public func write(to url: URL, format: SampleFormat? = nil, compression: TIFFCompression = .none) throws {
        try TIFFStackWriter(stack: self, path: url.path, format: format ?? self.format, compression: compression).write()
    }

    /// Writes the stack to `path`. See `write(to:format:compression:)`.
    public func write(path: String, format: SampleFormat? = nil, compression: TIFFCompression = .none) throws {
        try TIFFStackWriter(stack: self, path: path, format: format ?? self.format, compression: compression).write()
    }
}

private struct TIFFStackWriter {
    let stack: ImageStack
    let path: String
    let format: ImageStack.SampleFormat
    let compression: TIFFCompression

    func fail(page: Int? = nil, _ message: String, _ sink: TIFFMessageSink? = nil) -> TIFFError {
        TIFFError(.writeFailed, path: path, page: page, message: message, libtiffMessages: sink?.messages ?? [])
    }

    func write() throws {
        guard stack.pages > 0, stack.width > 0, stack.height > 0 else {
            throw fail("cannot write an empty stack (\(stack.pages) pages of \(stack.width) x \(stack.height))")
        }
        guard stack.width <= Int(UInt32.max), stack.height <= Int(UInt32.max) else {
            throw fail("dimensions \(stack.width) x \(stack.height) are too large for TIFF")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw fail("cannot create a temporary file in \(directory): \(errnoDescription())")
        }
        var success = false
        defer { if !success { unlink(temporary) } }

        let payload = stack.width * stack.height * stack.pages * format.bytesPerSample
        let mode = payload > 3_900_000_000 ? "w8" : "w"   // BigTIFF beyond classic TIFF's 4 GiB offsets
        let (opened, sink) = LibTIFFHandle.open(fd: fd, path: temporary, mode: mode, maxSingleAllocation: 1 << 30)
        guard let handle = opened else { throw fail("libtiff could not start the file", sink) }
        do {
            for page in 0..<stack.pages { try writePage(handle, page: page) }
        } catch {
            handle.close()
            throw error
        }
        handle.close()
        if sink.errorCount > 0 { throw fail("libtiff reported errors while finishing the file", sink) }
        guard rename(temporary, path) == 0 else {
            throw fail("cannot rename the temporary file into place: \(errnoDescription())")
        }
        success = true
    }

    func writePage(_ h: LibTIFFHandle, page: Int) throws {
        let tif = h.tif
        let rowBytes = stack.width * format.bytesPerSample
        let rowsPerStrip = max(1, min(stack.height, (64 << 10) / max(rowBytes, 1)))
        var ok = true
        ok = h.set(TIFFTAG_SUBFILETYPE, u32: UInt32(FILETYPE_PAGE)) && ok
        ok = h.set(TIFFTAG_IMAGEWIDTH, u32: UInt32(stack.width)) && ok
        ok = h.set(TIFFTAG_IMAGELENGTH, u32: UInt32(stack.height)) && ok
        ok = h.set(TIFFTAG_BITSPERSAMPLE, u16: UInt16(format.bitsPerSample)) && ok
        ok = h.set(TIFFTAG_SAMPLESPERPIXEL, u16: 1) && ok
        ok = h.set(TIFFTAG_SAMPLEFORMAT, u16: UInt16(format == .float32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT)) && ok
        ok = h.set(TIFFTAG_PHOTOMETRIC, u16: UInt16(PHOTOMETRIC_MINISBLACK)) && ok
        ok = h.set(TIFFTAG_PLANARCONFIG, u16: UInt16(PLANARCONFIG_CONTIG)) && ok
        ok = h.set(TIFFTAG_ORIENTATION, u16: UInt16(ORIENTATION_TOPLEFT)) && ok
        ok = h.set(TIFFTAG_ROWSPERSTRIP, u32: UInt32(rowsPerStrip)) && ok
        ok = h.set(TIFFTAG_PAGENUMBER, u16: UInt16(min(page, 65535)), UInt16(min(stack.pages, 65535))) && ok
        ok = h.set(TIFFTAG_SOFTWARE, string: "swift-unet") && ok
        let predictor = format == .float32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL
        switch compression {
        case .none:
            ok = h.set(TIFFTAG_COMPRESSION, u16: UInt16(COMPRESSION_NONE)) && ok
        case .lzw:
            ok = h.set(TIFFTAG_COMPRESSION, u16: UInt16(COMPRESSION_LZW)) && ok
            ok = h.set(TIFFTAG_PREDICTOR, u16: UInt16(predictor)) && ok
        case .deflate:
            ok = h.set(TIFFTAG_COMPRESSION, u16: UInt16(COMPRESSION_ADOBE_DEFLATE)) && ok
            ok = h.set(TIFFTAG_PREDICTOR, u16: UInt16(predictor)) && ok
        case .packBits:
            ok = h.set(TIFFTAG_COMPRESSION, u16: UInt16(COMPRESSION_PACKBITS)) && ok
        }
        guard ok else { throw fail(page: page, "libtiff rejected a tag value", h.sink) }

        let buffer = UnsafeMutableRawPointer.allocate(byteCount: rowsPerStrip * rowBytes, alignment: 16)
        defer { buffer.deallocate() }
        try stack.pixels.withUnsafeBufferPointer { all in
            let base = all.baseAddress! + page * stack.width * stack.height
            var strip: UInt32 = 0
            for row0 in stride(from: 0, to: stack.height, by: rowsPerStrip) {
                let rows = min(rowsPerStrip, stack.height - row0)
                let count = rows * stack.width
                encode(base + row0 * stack.width, count: count, into: buffer)
                let bytes = count * format.bytesPerSample
                if TIFFWriteEncodedStrip(tif, strip, buffer, tmsize_t(bytes)) != bytes {
                    throw fail(page: page, "strip \(strip) could not be written", h.sink)
                }
                strip += 1
            }
        }
        guard TIFFWriteDirectory(tif) == 1, h.sink.errorCount == 0 else {
            throw fail(page: page, "the directory could not be written", h.sink)
        }
    }

    func encode(_ source: UnsafePointer<Float>, count: Int, into buffer: UnsafeMutableRawPointer) {
        switch format {
        case .uint8:
            let d = buffer.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count {
                let v = source[i]
                d[i] = v.isNaN ? 0 : UInt8(min(max(v.rounded(), 0), 255))
            }
        case .uint16:
            let d = buffer.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count {
                let v = source[i]
                d[i] = v.isNaN ? 0 : UInt16(min(max(v.rounded(), 0), 65535))
            }
        case .float32:
            buffer.assumingMemoryBound(to: Float.self).update(from: source, count: count)
        }
    }
}
