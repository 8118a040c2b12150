#if canImport(Glibc)
import Glibc
#endif

/// The byte layout of a TIFF file as its header and directories announce it, read with our own
/// `pread`s, independently of libtiff.
///
/// The reader checks the header with it before libtiff sees the file, so that an empty file, a file that
/// is not a TIFF or a cut header get a precise error. When a libtiff call later fails, the reader asks
/// it whether the file ends before something it announces (a directory, a tag's values, a strip or
/// tile): then the file is truncated; otherwise libtiff failed on bytes that are there, and the file is
/// corrupt. No libtiff message text is involved in that decision.
struct TIFFFileLayout {
    /// An open file descriptor, owned by the caller.
    let fd: Int32
    /// The file's size in bytes.
    let size: Int
    let littleEndian: Bool
    /// BigTIFF (version 43: 8-byte offsets and counts) rather than classic TIFF (version 42).
    let bigTIFF: Bool
    /// Offset of the first directory; non-zero and within the file.
    let firstDirectory: UInt64

    /// What is wrong with a file's header, before any directory is read.
    enum HeaderProblem: Error {
        case cannotStat(errno: Int32)
        case isADirectory
        case cannotRead(errno: Int32)
        /// 0 bytes.
        case emptyFile
        /// No II/MM byte-order mark; the first (up to 8) bytes.
        case noByteOrderMark(firstBytes: [UInt8])
        /// A byte-order mark followed by a version that is neither 42 nor 43.
        case unknownVersion(UInt64)
        /// The header is shorter than its 8 (classic) or 16 (BigTIFF) bytes.
        case headerCutShort(bytes: Int, expected: Int, bigTIFF: Bool)
        /// The header's first-directory offset is 0: no pages.
        case noFirstDirectory
        /// The first directory starts at or past the end of the file.
        case firstDirectoryPastEnd(offset: UInt64, fileSize: Int)
    }

    /// Reads and checks the 8-byte (classic) or 16-byte (BigTIFF) header of the file open as `fd`.
    init(fd: Int32) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HeaderProblem.cannotStat(errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw HeaderProblem.isADirectory }
        let size = Int(st.st_size)
        if size == 0 { throw HeaderProblem.emptyFile }
        var header = [UInt8](repeating: 0, count: 16)
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 16, 0) }
        guard got >= 0 else { throw HeaderProblem.cannotRead(errno: errno) }
        let n = Int(got)
        let little: Bool
        switch (header[0], header[1]) {
        case (0x49, 0x49) where n >= 2: little = true
        case (0x4D, 0x4D) where n >= 2: little = false
        default: throw HeaderProblem.noByteOrderMark(firstBytes: Array(header.prefix(min(n, 8))))
        }
        if n < 4 { throw HeaderProblem.headerCutShort(bytes: n, expected: 8, bigTIFF: false) }
        let version = Self.unsigned(header, at: 2, bytes: 2, littleEndian: little)
        let first: UInt64
        switch version {
        case 42:
            if n < 8 { throw HeaderProblem.headerCutShort(bytes: n, expected: 8, bigTIFF: false) }
            first = Self.unsigned(header, at: 4, bytes: 4, littleEndian: little)
        case 43:
            if n < 16 { throw HeaderProblem.headerCutShort(bytes: n, expected: 16, bigTIFF: true) }
            first = Self.unsigned(header, at: 8, bytes: 8, littleEndian: little)
        default:
            throw HeaderProblem.unknownVersion(version)
        }
        if first == 0 { throw HeaderProblem.noFirstDirectory }
        if first >= UInt64(size) { throw HeaderProblem.firstDirectoryPastEnd(offset: first, fileSize: size) }
        self.fd = fd
        self.size = size
        littleEndian = little
        bigTIFF = version == 43
        firstDirectory = first
    }

    /// The unsigned integer of `bytes` bytes at `offset` of `buffer`.
    static func unsigned(_ buffer: [UInt8], at offset: Int, bytes: Int, littleEndian: Bool) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<bytes {
            let byte = UInt64(buffer[offset + (littleEndian ? bytes - 1 - i : i)])
            value = value << 8 | byte
        }
        return value
    }

    // MARK: what the file announces past its end

    /// Whether `count` bytes at `offset` run past the end of the file (overflow-safe).
    func runsPastEnd(offset: UInt64, count: UInt64) -> Bool {
        offset > UInt64(size) || count > UInt64(size) - offset
    }

    /// Bytes per value of the TIFF field types; nil for types this check does not know (libtiff skips
    /// those with a warning, so they cannot make it fail).
    static func fieldTypeSize(_ type: UInt64) -> UInt64? {
        switch type {
        case 1, 2, 6, 7: return 1          // BYTE, ASCII, SBYTE, UNDEFINED
        case 3, 8: return 2                // SHORT, SSHORT
        case 4, 9, 11, 13: return 4        // LONG, SLONG, FLOAT, IFD
        case 5, 10, 12, 16, 17, 18: return 8  // RATIONAL, SRATIONAL, DOUBLE, LONG8, SLONG8, IFD8
        default: return nil
        }
    }

    /// Reads exactly `count` bytes at `offset`; nil when the read fails or comes up short.
    func bytes(at offset: UInt64, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return buffer
    }

    /// The first thing along the chain of directories that lies past the end of the file, described
    /// for an error message ("directory 2 at offset 70000 lies past the end of the file (4000 bytes)");
    /// nil when every directory, with its tags' values, lies within the file. Stops at a directory
    /// offset seen before (a loop, which libtiff reports itself) and after `maxDirectories`.
    func directoryShortfall(maxDirectories: Int = 1 << 20) -> String? {
        let countSize = bigTIFF ? 8 : 2, entrySize = bigTIFF ? 20 : 12, linkSize = bigTIFF ? 8 : 4
        let inlineSize: UInt64 = bigTIFF ? 8 : 4
        let fileSize = "the file has only \(size) bytes"
        var offset = firstDirectory
        var seen = Set<UInt64>()
        for index in 0..<maxDirectories {
            guard offset != 0, seen.insert(offset).inserted else { return nil }
            if runsPastEnd(offset: offset, count: UInt64(countSize)) {
                return "directory \(index) is at offset \(offset) but \(fileSize)"
            }
            guard let countBytes = bytes(at: offset, count: countSize) else { return nil }
            let entries = Self.unsigned(countBytes, at: 0, bytes: countSize, littleEndian: littleEndian)
            let (entryBytes, overflow) = entries.multipliedReportingOverflow(by: UInt64(entrySize))
            let tableBytes = UInt64(countSize) &+ entryBytes &+ UInt64(linkSize)
            if overflow || runsPastEnd(offset: offset, count: tableBytes) {
                return "directory \(index) at offset \(offset) announces \(entries) entries, which run past the end of the file (\(size) bytes)"
            }
            guard let table = bytes(at: offset + UInt64(countSize), count: Int(entryBytes) + linkSize) else { return nil }
            for e in 0..<Int(entries) {
                let at = e * entrySize
                let tag = Self.unsigned(table, at: at, bytes: 2, littleEndian: littleEndian)
                let type = Self.unsigned(table, at: at + 2, bytes: 2, littleEndian: littleEndian)
                let count = Self.unsigned(table, at: at + 4, bytes: bigTIFF ? 8 : 4, littleEndian: littleEndian)
                guard let typeSize = Self.fieldTypeSize(type) else { continue }
                let (valueBytes, tooMany) = count.multipliedReportingOverflow(by: typeSize)
                if tooMany { return "directory \(index): tag \(tag) announces \(count) values, more than any file holds" }
                guard valueBytes > inlineSize else { continue }
                let valueOffset = Self.unsigned(table, at: at + (bigTIFF ? 12 : 8), bytes: Int(inlineSize), littleEndian: littleEndian)
                if runsPastEnd(offset: valueOffset, count: valueBytes) {
                    return "directory \(index): the \(valueBytes) bytes of tag \(tag) at offset \(valueOffset) run past the end of the file (\(size) bytes)"
                }
            }
            offset = Self.unsigned(table, at: Int(entryBytes), bytes: linkSize, littleEndian: littleEndian)
        }
        return nil
    }

    /// Whether the `count` bytes of a strip or tile at `offset` run past the end of the file, described
    /// for an error message; nil when they lie within it.
    func pixelDataShortfall(_ what: String, offset: UInt64, count: UInt64) -> String? {
        guard runsPastEnd(offset: offset, count: count) else { return nil }
        return "\(what)'s \(count) bytes at offset \(offset) run past the end of the file (\(size) bytes)"
    }
}
