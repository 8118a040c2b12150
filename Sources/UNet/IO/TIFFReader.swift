import CTIFF
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
struct TIFFPageInfo {
    var width: Int
    var height: Int
    var format: ImageStack.SampleFormat
    var invert: Bool
    var tiled: Bool
    /// Strips or tiles hold exactly the decoded bytes (compression none).
    var uncompressed: Bool
}

/// Reads a whole stack through libtiff. Every failure becomes a `TIFFError` whose kind comes from what
/// failed: our own checks of the header and of the tags before anything is read or allocated, the
/// libtiff call that returned an error, and, for those, whether the file ends before what it
/// announces (`TIFFFileLayout`): truncated if so, corrupt if not.
struct TIFFStackReader {
    let path: String
    let limits: TIFFReadLimits

    func read() throws -> ImageStack {
        let reader = try TIFFPageReader(path: path, limits: limits)
        // The whole stack's size is checked before anything is allocated.
        let (pixelsPerPage, o1) = reader.width.multipliedReportingOverflow(by: reader.height)
        let (total, o2) = pixelsPerPage.multipliedReportingOverflow(by: reader.pages)
        let (bytes, o3) = total.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        if o1 || o2 || o3 || bytes > limits.maxTotalBytes {
            throw fail(.absurdDimensions, page: 0,
                       "\(reader.pages) page(s) of \(reader.width) x \(reader.height) would need more than the limit of \(limits.maxTotalBytes) bytes")
        }
        // The stack grows page by page as pages decode, so that a small file announcing many large
        // pages (directories are a few bytes each) fails at its first bad page, not after allocating
        // them all. Reserving one float per byte of the file covers an uncompressed stack at once.
        var pixels: [Float] = []
        pixels.reserveCapacity(min(total, max(pixelsPerPage, reader.fileSize)))
        for page in 0..<reader.pages {
            pixels.append(contentsOf: repeatElement(0, count: pixelsPerPage))
            try pixels.withUnsafeMutableBufferPointer { buffer in
                try reader.readPage(page, into: buffer.baseAddress! + page * pixelsPerPage)
            }
        }
        return ImageStack(width: reader.width, height: reader.height, pages: reader.pages, pixels: pixels,
                          format: reader.format)
    }

    /// How many times its own size a file's compressed pixel data is taken to decode to at most; a
    /// page announcing more is rejected as corrupt before its pixels are allocated. (Deflate tops out
    /// near 1032:1, LZW near 2730:1, PackBits at 64:1.)
    static let maximumExpansion = 1 << 16

    /// Rejects a page whose decoded size the file cannot hold (uncompressed: more bytes than the file
    /// has; compressed: more than `maximumExpansion` times the file), before anything of that size is
    /// allocated: a header of a few bytes must not make the reader allocate gigabytes.
    func checkPixelDataFits(_ h: LibTIFFHandle, _ layout: TIFFFileLayout, info: TIFFPageInfo, page: Int) throws {
        // A tile is decoded whole, so a tile larger than the page counts with its own size.
        var strileBytes = 0, striles = 0
        if info.tiled {
            // Tiles beyond the per-side limit are reported by readTiles.
            if let tw = h.u32(TIFFTAG_TILEWIDTH), let th = h.u32(TIFFTAG_TILELENGTH),
               Int(tw) <= limits.maxSide, Int(th) <= limits.maxSide {
                strileBytes = Int(tw) * Int(th) * info.format.bytesPerSample
                striles = Int(TIFFNumberOfTiles(h.tif))
            }
        } else {
            let rows = min(Int(h.u32Defaulted(TIFFTAG_ROWSPERSTRIP) ?? UInt32.max), info.height)
            strileBytes = rows * info.width * info.format.bytesPerSample
            striles = Int(TIFFNumberOfStrips(h.tif))
        }
        let decoded = max(info.width * info.height * info.format.bytesPerSample, strileBytes)   // sides <= maxSide
        let expansion = info.uncompressed ? 1 : Self.maximumExpansion
        let (bound, overflow) = layout.size.multipliedReportingOverflow(by: expansion)
        guard !overflow, decoded > bound else { return }
        let what = "\(info.width) x \(info.height) \(info.format.rawValue) samples (\(decoded) bytes\(info.tiled ? " with tiles" : ""))"
        guard info.uncompressed else {
            throw fail(.corrupt, page: page,
                       "\(what) cannot be decoded from a \(layout.size)-byte file (more than \(expansion) times its size)", h.sink)
        }
        // Name the first strip or tile that runs past the end of the file, as a failed read would.
        throw pixelDataFailure(h, layout, info: info, page: page, striles: 0..<min(striles, 1 << 16), decodedBytes: strileBytes,
                               "the uncompressed pixel data, \(what), cannot lie in the \(layout.size)-byte file")
    }

    func fail(_ kind: TIFFError.Kind, page: Int? = nil, _ message: String,
              _ sink: TIFFMessageSink? = nil) -> TIFFError {
        TIFFError(kind, path: path, page: page, message: message, libtiffMessages: sink?.messages ?? [])
    }

    /// The header checked by `TIFFFileLayout`, its problems as `TIFFError`s.
    func checkedLayout(fd: Int32) throws -> TIFFFileLayout {
        do {
            return try TIFFFileLayout(fd: fd)
        } catch let problem as TIFFFileLayout.HeaderProblem {
            throw error(for: problem)
        }
    }

    func error(for problem: TIFFFileLayout.HeaderProblem) -> TIFFError {
        switch problem {
        case .cannotStat(let code):
            return TIFFError(.cannotOpen, path: path, message: "cannot stat: \(errnoDescription(code))", systemErrorCode: code)
        case .isADirectory:
            return fail(.cannotOpen, "is a directory, not a file")
        case .cannotRead(let code):
            return TIFFError(.cannotOpen, path: path, message: "cannot read: \(errnoDescription(code))", systemErrorCode: code)
        case .emptyFile:
            return fail(.empty, "file is empty (0 bytes)")
        case .noByteOrderMark(let bytes):
            let shown = bytes.map { String(format: "%02X", $0) }.joined(separator: " ")
            return fail(.notATIFF, "not a TIFF file (no II/MM byte-order mark; starts with \(shown))")
        case .unknownVersion(let version):
            return fail(.notATIFF, "not a TIFF file (byte-order mark followed by version \(version), expected 42 or 43)")
        case let .headerCutShort(bytes, expected, bigTIFF):
            return fail(.truncated, "\(bigTIFF ? "BigTIFF" : "TIFF") header cut short (\(bytes) of \(expected) bytes)")
        case .noFirstDirectory:
            return fail(.empty, "contains no pages (the header's first-directory offset is 0)")
        case let .firstDirectoryPastEnd(offset, size):
            return fail(.truncated, "truncated: the first directory is at offset \(offset) but the file has only \(size) bytes")
        }
    }

    /// libtiff failed to read a directory: truncated when the chain of directories runs past the end of
    /// the file, corrupt otherwise.
    func directoryFailure(_ layout: TIFFFileLayout, page: Int? = nil, _ message: String,
                          _ sink: TIFFMessageSink) -> TIFFError {
        if let shortfall = layout.directoryShortfall() {
            return fail(.truncated, page: page, "\(message): \(shortfall)", sink)
        }
        return fail(.corrupt, page: page, message, sink)
    }

    /// libtiff failed on the pixel data of `striles` (strips or tiles) of a page: truncated when one of
    /// them, or a directory with the values that locate them, runs past the end of the file; corrupt
    /// otherwise.
    func pixelDataFailure(_ h: LibTIFFHandle, _ layout: TIFFFileLayout, info: TIFFPageInfo, page: Int,
                          striles: Range<Int>, decodedBytes: Int = 0, _ message: String) -> TIFFError {
        let noun = info.tiled ? "tile" : "strip"
        for strile in striles {
            let offset = TIFFGetStrileOffset(h.tif, UInt32(strile))
            var count = TIFFGetStrileByteCount(h.tif, UInt32(strile))
            // libtiff may shrink an uncompressed strip's byte count to what the file holds; its decoded
            // size is what the file must hold.
            if info.uncompressed { count = max(count, UInt64(decodedBytes)) }
            if let shortfall = layout.pixelDataShortfall("\(noun) \(strile)", offset: offset, count: count) {
                return fail(.truncated, page: page, "\(message): \(shortfall)", h.sink)
            }
        }
        if let shortfall = layout.directoryShortfall() {
            return fail(.truncated, page: page, "\(message): \(shortfall)", h.sink)
        }
        return fail(.corrupt, page: page, message, h.sink)
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
        case (32, SAMPLEFORMAT_UINT), (32, SAMPLEFORMAT_VOID): format = .uint32
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
        let compression = Int32(h.u16Defaulted(TIFFTAG_COMPRESSION) ?? UInt16(COMPRESSION_NONE))
        return TIFFPageInfo(width: width, height: height, format: format, invert: invert,
                            tiled: TIFFIsTiled(h.tif) != 0, uncompressed: compression == COMPRESSION_NONE)
    }

    func readStrips(_ h: LibTIFFHandle, _ layout: TIFFFileLayout, info: TIFFPageInfo, page: Int,
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
                throw pixelDataFailure(h, layout, info: info, page: page, striles: strip..<(strip + 1), decodedBytes: needed,
                                       "strip \(strip) could not be read (\(max(got, 0)) of \(needed) bytes)")
            }
            convert(buffer, count: rows * info.width, format: info.format, invert: info.invert,
                    to: destination + row0 * info.width)
        }
    }

    func readTiles(_ h: LibTIFFHandle, _ layout: TIFFFileLayout, info: TIFFPageInfo, page: Int,
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
                    throw pixelDataFailure(h, layout, info: info, page: page, striles: Int(tile)..<(Int(tile) + 1),
                                           decodedBytes: tileBytes,
                                           "tile \(tile) at (\(x0), \(y0)) could not be read (\(max(got, 0)) of \(tileBytes) bytes)")
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
        case .uint32:
            let s = source.assumingMemoryBound(to: UInt32.self)
            if invert { for i in 0..<count { destination[i] = Float(UInt32.max &- s[i]) } }
            else { for i in 0..<count { destination[i] = Float(s[i]) } }
        case .float32:
            destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        }
    }
}
