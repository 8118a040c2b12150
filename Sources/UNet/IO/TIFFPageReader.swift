import CTIFF
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the pages of a multi-page grayscale TIFF one at a time, in any order, so that a stack of
/// any length is processed with the memory of one page (`ImageStack.read` reads them all).
///
/// Accepts what `ImageStack.read` accepts; every page must have page 0's size and sample format.
/// ```swift
/// let reader = try TIFFPageReader(path: "volume.tif")
/// for page in 0..<reader.pages {
///     let pixels = try reader.readPage(page)      // width * height values, raw scale
/// }
/// ```
/// Failures are `TIFFError`s naming the file, the page and the problem, as for `ImageStack.read`.
public final class TIFFPageReader {
    /// The file.
    public let path: String
    /// Pages in the file.
    public let pages: Int
    /// Page width in pixels.
    public let width: Int
    /// Page height in pixels.
    public let height: Int
    /// The sample format of every page.
    public let format: ImageStack.SampleFormat

    private let checks: TIFFStackReader
    private let fd: Int32
    private let layout: TIFFFileLayout
    /// The file's size in bytes.
    var fileSize: Int { layout.size }
    private let handle: LibTIFFHandle
    private var currentPage = 0

    /// Opens `path` and reads page 0's directory. `limits.maxSide` bounds the pages' sides and
    /// `limits.maxTotalBytes` one page's decoded size.
    public init(path: String, limits: TIFFReadLimits = .default) throws {
        let checks = TIFFStackReader(path: path, limits: limits)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw TIFFError(.cannotOpen, path: path, message: "cannot open: \(errnoDescription(code))", systemErrorCode: code)
        }
        var handed = false
        defer { if !handed { Glibc.close(fd) } }
        // `fd` stays ours for the layout checks; libtiff gets (and closes) a duplicate.
        let layout = try checks.checkedLayout(fd: fd)
        let libtiffFD = dup(fd)
        guard libtiffFD >= 0 else {
            let code = errno
            throw TIFFError(.cannotOpen, path: path, message: "cannot open: \(errnoDescription(code))", systemErrorCode: code)
        }
        // "m": no memory mapping, so a file shortened under us is a read error, not SIGBUS.
        let maxAlloc = max(256 << 20, min(limits.maxTotalBytes, Int(Int32.max)))
        let (opened, sink) = LibTIFFHandle.open(fd: libtiffFD, path: path, mode: "rm", maxSingleAllocation: maxAlloc)
        guard let handle = opened else {
            throw checks.directoryFailure(layout, "cannot read the first directory", sink)
        }
        var keep = false
        defer { if !keep { handle.close() } }
        let directoryCount = Int(TIFFNumberOfDirectories(handle.tif))
        if sink.errorCount > 0 {
            throw checks.directoryFailure(layout, "the chain of directories is broken after \(directoryCount) page(s)", sink)
        }
        guard directoryCount > 0 else { throw checks.fail(.empty, "contains no pages", sink) }
        let info = try checks.pageInfo(handle, page: 0)
        let (pixelsPerPage, o1) = info.width.multipliedReportingOverflow(by: info.height)
        let (bytes, o2) = pixelsPerPage.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        if o1 || o2 || bytes > limits.maxTotalBytes {
            throw checks.fail(.absurdDimensions, page: 0,
                              "\(directoryCount) page(s) of \(info.width) x \(info.height): a single page would need more than the limit of \(limits.maxTotalBytes) bytes", sink)
        }
        try checks.checkPixelDataFits(handle, layout, info: info, page: 0)
        self.path = path
        self.checks = checks
        self.fd = fd
        self.layout = layout
        self.handle = handle
        pages = directoryCount
        width = info.width
        height = info.height
        format = info.format
        handed = true
        keep = true
    }

    deinit {
        handle.close()
        Glibc.close(fd)
    }

    /// The pixels of `page` (`width * height` values, row after row, in the file's own scale: 0-255,
    /// 0-65535 or float).
    public func readPage(_ page: Int) throws -> [Float] {
        var pixels = [Float](repeating: 0, count: width * height)
        try pixels.withUnsafeMutableBufferPointer { try readPage(page, into: $0.baseAddress!) }
        return pixels
    }

    /// Reads `page` into `destination` (`width * height` floats).
    func readPage(_ page: Int, into destination: UnsafeMutablePointer<Float>) throws {
        precondition(page >= 0 && page < pages, "TIFFPageReader: page \(page) of \(pages)")
        let tif = handle.tif, sink = handle.sink
        if page != currentPage {
            // The next page follows the chain; any other is found from the first directory.
            let moved = page == currentPage + 1 ? TIFFReadDirectory(tif) : TIFFSetDirectory(tif, tdir_t(page))
            guard moved == 1, sink.errorCount == 0 else {
                throw checks.directoryFailure(layout, page: page, "cannot read the directory", sink)
            }
            currentPage = page
        }
        let info = try checks.pageInfo(handle, page: page)
        if info.width != width || info.height != height {
            throw checks.fail(.inconsistentPages, page: page,
                              "page size \(info.width) x \(info.height) differs from page 0's \(width) x \(height)", sink)
        }
        if info.format != format {
            throw checks.fail(.inconsistentPages, page: page,
                              "sample format \(info.format.rawValue) differs from page 0's \(format.rawValue)", sink)
        }
        try checks.checkPixelDataFits(handle, layout, info: info, page: page)
        if info.tiled {
            try checks.readTiles(handle, layout, info: info, page: page, into: destination)
        } else {
            try checks.readStrips(handle, layout, info: info, page: page, into: destination)
        }
        if sink.errorCount > 0 {
            // Every read returned its bytes, yet libtiff reported an error on the way.
            throw checks.pixelDataFailure(handle, layout, info: info, page: page,
                                          striles: 0..<Int(info.tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif)),
                                          "errors while decoding the pixel data")
        }
    }
}
