import CTIFF
import Foundation
import NN
#if canImport(Glibc)
import Glibc
#endif

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
        try write(path: url.path, format: format, compression: compression)
    }

    /// Writes the stack to `path`. See `write(to:format:compression:)`.
    public func write(path: String, format: SampleFormat? = nil, compression: TIFFCompression = .none) throws {
        let writer = try TIFFPageWriter(path: path, width: width, height: height, pages: pages,
                                        format: format ?? self.format, compression: compression)
        try pixels.withUnsafeBufferPointer { all in
            for page in 0..<pages {
                try writer.write(UnsafeBufferPointer(rebasing: all[pageRange(page)]))
            }
        }
        try writer.finish()
    }
}

/// Writes a multi-page grayscale TIFF one page at a time, so a stack of any length is written with
/// the memory of one page. The pages go to a temporary file in the destination's folder, flushed to
/// disk and renamed over `path` by `finish()` once all are written: readers never see a half-written
/// file, a crash leaves the old file or the complete new one, and a
/// writer dropped before `finish()` removes its temporary file. Files whose pixel data would pass
/// classic TIFF's 4 GiB offsets are written as BigTIFF.
///
/// ```swift
/// let writer = try TIFFPageWriter(path: "probabilities.tif", width: 512, height: 512, pages: 30, format: .float32)
/// for page in 0..<30 { try writer.write(probabilities(of: page)) }   // 512 * 512 floats each
/// try writer.finish()
/// ```
public final class TIFFPageWriter {
    /// The destination.
    public let path: String
    /// Page width in pixels.
    public let width: Int
    /// Page height in pixels.
    public let height: Int
    /// Pages the file will hold; `finish()` requires exactly this many.
    public let pages: Int
    /// The sample format of the file. Integer formats take the values rounded and clamped to their
    /// range (NaN becomes 0).
    public let format: ImageStack.SampleFormat
    /// The compression of every page.
    public let compression: TIFFCompression
    /// True when the file is a BigTIFF (64-bit offsets).
    public let isBigTIFF: Bool
    /// Pages written so far.
    public private(set) var pagesWritten = 0

    private let temporary: String
    private var handle: LibTIFFHandle?
    private var finished = false

    /// Pixel data past this size is written as BigTIFF (classic TIFF's offsets end at 4 GiB; the
    /// margin leaves room for the directories).
    static let bigTIFFThreshold = 3_900_000_000

    /// Creates the temporary file. Throws `TIFFError` of kind `.writeFailed` naming the folder.
    public convenience init(path: String, width: Int, height: Int, pages: Int, format: ImageStack.SampleFormat,
                            compression: TIFFCompression = .none) throws {
        try self.init(path: path, width: width, height: height, pages: pages, format: format, compression: compression,
                      bigTIFF: nil)
    }

    /// `bigTIFF` nil chooses by size; true or false forces the layout (for tests of large-file paths).
    package init(path: String, width: Int, height: Int, pages: Int, format: ImageStack.SampleFormat,
                 compression: TIFFCompression, bigTIFF: Bool?) throws {
        self.path = path
        self.width = width
        self.height = height
        self.pages = pages
        self.format = format
        self.compression = compression
        guard pages > 0, width > 0, height > 0 else {
            throw TIFFError(.writeFailed, path: path, message: "cannot write an empty stack (\(pages) pages of \(width) x \(height))")
        }
        guard width <= Int(UInt32.max), height <= Int(UInt32.max) else {
            throw TIFFError(.writeFailed, path: path, message: "dimensions \(width) x \(height) are too large for TIFF")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw TIFFError(.writeFailed, path: path, message: "cannot create a temporary file in \(directory): \(errnoDescription(code))",
                            systemErrorCode: code)
        }
        let (payload, overflow) = (width * height).multipliedReportingOverflow(by: pages * format.bytesPerSample)
        isBigTIFF = bigTIFF ?? (overflow || payload > Self.bigTIFFThreshold)
        errno = 0
        let (opened, sink) = LibTIFFHandle.open(fd: fd, path: temporary, mode: isBigTIFF ? "w8" : "w", maxSingleAllocation: 1 << 30)
        guard let opened else {
            let code = errno
            unlink(temporary)
            throw TIFFError(.writeFailed, path: path, message: "libtiff could not start the file" + Self.systemReason(code),
                            libtiffMessages: sink.messages, systemErrorCode: code == 0 ? nil : code)
        }
        handle = opened
    }

    deinit {
        if !finished {
            handle?.close()
            unlink(temporary)
        }
    }

    func fail(page: Int? = nil, _ message: String, _ sink: TIFFMessageSink? = nil, systemErrorCode: Int32? = nil) -> TIFFError {
        TIFFError(.writeFailed, path: path, page: page, message: message, libtiffMessages: sink?.messages ?? [],
                  systemErrorCode: systemErrorCode)
    }

    /// A failed libtiff write with the system's reason (a full disk, a quota, an I/O error), which
    /// libtiff's own message leaves out: `errno` is cleared before each libtiff call that writes, so a
    /// non-zero value after its failure is that failure's.
    func writeFailure(page: Int? = nil, _ message: String, _ sink: TIFFMessageSink, errno code: Int32) -> TIFFError {
        fail(page: page, message + Self.systemReason(code), sink, systemErrorCode: code == 0 ? nil : code)
    }

    /// `": <strerror>"`, or nothing when `code` is 0.
    static func systemReason(_ code: Int32) -> String { code == 0 ? "" : ": \(errnoDescription(code))" }

    /// Appends the next page: `width * height` values, row after row.
    public func write(_ pixels: [Float]) throws {
        try pixels.withUnsafeBufferPointer { try write($0) }
    }

    /// Appends the next page: `width * height` values, row after row.
    public func write(_ pixels: UnsafeBufferPointer<Float>) throws {
        let base = pixels.baseAddress
        try writePage(count: pixels.count) { row0, count, buffer in
            self.encode(base! + row0 * self.width, count: count, into: buffer)
        }
    }

    /// Appends the next page of a `.uint32` file from integer labels (exact for every value, where
    /// Float pages are exact up to 2^24): `width * height` values, row after row.
    public func write(labels: [UInt32]) throws {
        guard format == .uint32 else {
            throw fail(page: pagesWritten, "integer labels need a uint32 file, this one is \(format.rawValue)")
        }
        try labels.withUnsafeBufferPointer { all in
            try writePage(count: all.count) { row0, count, buffer in
                buffer.assumingMemoryBound(to: UInt32.self).update(from: all.baseAddress! + row0 * self.width, count: count)
            }
        }
    }

    /// Writes one page's tags and strips; `encodeRows(firstRow, count, buffer)` fills a strip's
    /// `count` samples in the file's format.
    private func writePage(count: Int, encodeRows: (Int, Int, UnsafeMutableRawPointer) -> Void) throws {
        guard let h = handle, !finished else { throw fail("write after finish()") }
        guard pagesWritten < pages else { throw fail(page: pagesWritten, "more than the \(pages) page(s) announced") }
        guard count == width * height else {
            throw fail(page: pagesWritten, "a page of \(count) values, expected \(width) x \(height) = \(width * height)")
        }
        let page = pagesWritten
        let tif = h.tif
        let rowBytes = width * format.bytesPerSample
        let rowsPerStrip = max(1, min(height, (64 << 10) / max(rowBytes, 1)))
        var ok = true
        ok = h.set(TIFFTAG_SUBFILETYPE, u32: UInt32(FILETYPE_PAGE)) && ok
        ok = h.set(TIFFTAG_IMAGEWIDTH, u32: UInt32(width)) && ok
        ok = h.set(TIFFTAG_IMAGELENGTH, u32: UInt32(height)) && ok
        ok = h.set(TIFFTAG_BITSPERSAMPLE, u16: UInt16(format.bitsPerSample)) && ok
        ok = h.set(TIFFTAG_SAMPLESPERPIXEL, u16: 1) && ok
        ok = h.set(TIFFTAG_SAMPLEFORMAT, u16: UInt16(format == .float32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT)) && ok
        ok = h.set(TIFFTAG_PHOTOMETRIC, u16: UInt16(PHOTOMETRIC_MINISBLACK)) && ok
        ok = h.set(TIFFTAG_PLANARCONFIG, u16: UInt16(PLANARCONFIG_CONTIG)) && ok
        ok = h.set(TIFFTAG_ORIENTATION, u16: UInt16(ORIENTATION_TOPLEFT)) && ok
        ok = h.set(TIFFTAG_ROWSPERSTRIP, u32: UInt32(rowsPerStrip)) && ok
        ok = h.set(TIFFTAG_PAGENUMBER, u16: UInt16(min(page, 65535)), UInt16(min(pages, 65535))) && ok
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
        var strip: UInt32 = 0
        for row0 in stride(from: 0, to: height, by: rowsPerStrip) {
            let rows = min(rowsPerStrip, height - row0)
            let count = rows * width
            encodeRows(row0, count, buffer)
            let bytes = count * format.bytesPerSample
            errno = 0
            if TIFFWriteEncodedStrip(tif, strip, buffer, tmsize_t(bytes)) != bytes {
                throw writeFailure(page: page, "strip \(strip) could not be written", h.sink, errno: errno)
            }
            strip += 1
        }
        errno = 0
        guard TIFFWriteDirectory(tif) == 1, h.sink.errorCount == 0 else {
            throw writeFailure(page: page, "the directory could not be written", h.sink, errno: errno)
        }
        pagesWritten += 1
    }

    /// Completes the file and renames it over `path`. Requires all `pages` to have been written.
    public func finish() throws {
        guard let h = handle, !finished else { throw fail("finish() called twice") }
        guard pagesWritten == pages else {
            throw fail("only \(pagesWritten) of the \(pages) announced page(s) were written")
        }
        errno = 0
        h.close()
        handle = nil
        if h.sink.errorCount > 0 { throw writeFailure("libtiff reported errors while finishing the file", h.sink, errno: errno) }
        // The data reaches the disk before the rename, and the rename after it: a crash leaves the
        // old file or the complete new one.
        if let reason = AtomicFileWriter.syncFile(at: temporary) {
            throw fail("cannot flush the file to disk: \(reason)")
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            throw fail("cannot rename the temporary file into place: \(errnoDescription(code))", systemErrorCode: code)
        }
        AtomicFileWriter.syncFolder(of: path)
        finished = true
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
        case .uint32:
            let d = buffer.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count {
                let v = source[i]
                // Float(UInt32.max) rounds up to 2^32, which UInt32 cannot hold: clamp before converting.
                d[i] = v.isNaN ? 0 : v >= 4_294_967_296 ? UInt32.max : UInt32(max(v.rounded(), 0))
            }
        case .float32:
            buffer.assumingMemoryBound(to: Float.self).update(from: source, count: count)
        }
    }
}
