import CTIFF
import Foundation
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
        try TIFFStackWriter(stack: self, path: url.path, format: format ?? self.format, compression: compression).write()
    }

    /// Writes the stack to `path`. See `write(to:format:compression:)`.
    public func write(path: String, format: SampleFormat? = nil, compression: TIFFCompression = .none) throws {
        try TIFFStackWriter(stack: self, path: path, format: format ?? self.format, compression: compression).write()
    }
}

/// Writes a stack through libtiff into a temporary file that is renamed into place once complete.
struct TIFFStackWriter {
    let stack: ImageStack
    let path: String
    let format: ImageStack.SampleFormat
    let compression: TIFFCompression

    func fail(page: Int? = nil, _ message: String, _ sink: TIFFMessageSink? = nil, systemErrorCode: Int32? = nil) -> TIFFError {
        TIFFError(.writeFailed, path: path, page: page, message: message, libtiffMessages: sink?.messages ?? [],
                  systemErrorCode: systemErrorCode)
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
            let code = errno
            throw fail("cannot create a temporary file in \(directory): \(errnoDescription(code))", systemErrorCode: code)
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
            let code = errno
            throw fail("cannot rename the temporary file into place: \(errnoDescription(code))", systemErrorCode: code)
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
