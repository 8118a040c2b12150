import Foundation
import NN

/// A ZIP archive of stored (uncompressed) files, built in memory and written atomically: what a
/// bioimage.io model package is. Names are UTF-8 (general-purpose flag bit 11), every entry has the
/// same modification time, and the archive is the classic format without ZIP64, so it and every
/// entry must stay under 4 GiB and 65,535 entries; larger archives are refused, never truncated.
///
/// ```swift
/// var zip = ZipArchive(modified: Date())
/// try zip.add("rdf.yaml", Array(yaml.utf8))
/// try zip.write(to: "model.zip")
/// ```
package struct ZipArchive {
    /// One stored file.
    package struct Entry {
        /// Its path inside the archive, `/`-separated.
        package let name: String
        /// Its content.
        package let bytes: [UInt8]
        /// The CRC-32 of `bytes`.
        package let crc32: UInt32
    }

    /// The entries in the order they are written.
    package private(set) var entries: [Entry] = []
    /// Their names, for the duplicate check.
    private var names: Set<String> = []
    /// The size of the archive's bytes: headers, contents, central directory and end record.
    package private(set) var byteCount = ZipArchive.endRecordSize
    /// The DOS date and time (local header fields 10-13) of every entry.
    private let dosTime: UInt16
    private let dosDate: UInt16

    /// The largest archive: offsets and sizes are 32-bit, and 0xFFFFFFFF means "see ZIP64".
    package static let maximumBytes = Int(UInt32.max) - 1
    /// The most entries the classic end-of-central-directory record can count.
    package static let maximumEntries = Int(UInt16.max) - 1

    /// The largest archive this one may become (`maximumBytes`; smaller in tests).
    private let limit: Int

    /// An empty archive whose entries are dated `modified` (in UTC; DOS times have 2-second steps and
    /// start in 1980, so earlier dates are written as 1980-01-01), at most `maximumBytes` long.
    package init(modified: Date, maximumBytes: Int = ZipArchive.maximumBytes) {
        limit = min(maximumBytes, Self.maximumBytes)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: modified)
        let year = c.year ?? 1980
        if year < 1980 || year > 2107 {
            dosDate = 1 << 5 | 1
            dosTime = 0
        } else {
            dosDate = UInt16(year - 1980) << 9 | UInt16(c.month ?? 1) << 5 | UInt16(c.day ?? 1)
            dosTime = UInt16(c.hour ?? 0) << 11 | UInt16(c.minute ?? 0) << 5 | UInt16((c.second ?? 0) / 2)
        }
    }

    /// Adds a file.
    ///
    /// - Throws: `ZipArchiveError` when `name` is empty, absolute, has a `..`, `\` or empty component,
    ///   is already in the archive, or when the archive would pass 4 GiB or 65,534 entries.
    package mutating func add(_ name: String, _ bytes: [UInt8]) throws {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), name.utf8.count <= 0xFFFF,
              components.allSatisfy({ !$0.isEmpty && $0 != ".." && $0 != "." }),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ZipArchiveError.invalidName(name)
        }
        guard !names.contains(name) else { throw ZipArchiveError.duplicateName(name) }
        guard entries.count < Self.maximumEntries else { throw ZipArchiveError.tooManyEntries(entries.count + 1) }
        let total = byteCount + Self.localHeaderSize + Self.centralHeaderSize + 2 * name.utf8.count + bytes.count
        guard total <= limit else { throw ZipArchiveError.tooLarge(bytes: total) }
        entries.append(Entry(name: name, bytes: bytes, crc32: CRC32.checksum(bytes)))
        names.insert(name)
        byteCount = total
    }

    private static let localHeaderSize = 30
    private static let centralHeaderSize = 46
    private static let endRecordSize = 22

    /// The archive: each entry's local header and content, the central directory, the end record.
    package func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        write { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the archive to `path` atomically (a complete new file or none).
    ///
    /// - Throws: `FileWriteError` when the file cannot be written.
    package func write(to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        var failure: Error?
        write { chunk in
            guard failure == nil else { return }
            do { try writer.write(chunk) } catch { failure = error }
        }
        if let failure { throw failure }
        try writer.commit()
    }

    /// Hands the archive's bytes to `sink` in order, entry contents without copying them.
    private func write(_ sink: ([UInt8]) -> Void) {
        let flags: UInt16 = 1 << 11  // names are UTF-8
        var offsets: [Int] = []
        var offset = 0
        for entry in entries {
            offsets.append(offset)
            var header = LittleEndianBytes()
            header.u32(0x0403_4B50)
            header.u16(20)  // version needed: 2.0
            header.u16(flags)
            header.u16(0)   // stored
            header.u16(dosTime)
            header.u16(dosDate)
            header.u32(entry.crc32)
            header.u32(UInt32(entry.bytes.count))
            header.u32(UInt32(entry.bytes.count))
            header.u16(UInt16(entry.name.utf8.count))
            header.u16(0)   // no extra field
            header.bytes += Array(entry.name.utf8)
            sink(header.bytes)
            sink(entry.bytes)
            offset += header.bytes.count + entry.bytes.count
        }
        var directory = LittleEndianBytes()
        for (entry, entryOffset) in zip(entries, offsets) {
            directory.u32(0x0201_4B50)
            directory.u16(3 << 8 | 20)  // made by: Unix, 2.0 (so the external attributes are Unix modes)
            directory.u16(20)
            directory.u16(flags)
            directory.u16(0)
            directory.u16(dosTime)
            directory.u16(dosDate)
            directory.u32(entry.crc32)
            directory.u32(UInt32(entry.bytes.count))
            directory.u32(UInt32(entry.bytes.count))
            directory.u16(UInt16(entry.name.utf8.count))
            directory.u16(0)  // extra
            directory.u16(0)  // comment
            directory.u16(0)  // disk
            directory.u16(0)  // internal attributes
            directory.u32(0o100644 << 16)  // a regular file, rw-r--r--
            directory.u32(UInt32(entryOffset))
            directory.bytes += Array(entry.name.utf8)
        }
        var end = LittleEndianBytes()
        end.u32(0x0605_4B50)
        end.u16(0)
        end.u16(0)
        end.u16(UInt16(entries.count))
        end.u16(UInt16(entries.count))
        end.u32(UInt32(directory.bytes.count))
        end.u32(UInt32(offset))
        end.u16(0)  // no comment
        sink(directory.bytes + end.bytes)
    }
}

/// Little-endian integer fields appended to a byte array.
struct LittleEndianBytes {
    var bytes: [UInt8] = []
    mutating func u16(_ v: UInt16) { bytes += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
    mutating func u32(_ v: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) } }
}

/// A file that cannot go into a `ZipArchive`.
package enum ZipArchiveError: Error, CustomStringConvertible, Equatable {
    /// The name is empty, absolute, has `.`/`..`/empty components, a backslash or a control character.
    case invalidName(String)
    /// The name is already in the archive.
    case duplicateName(String)
    /// The archive would hold this many bytes, over the 4 GiB a ZIP without ZIP64 can address.
    case tooLarge(bytes: Int)
    /// The archive would hold this many entries, over the classic format's 65,534.
    case tooManyEntries(Int)

    package var description: String {
        switch self {
        case let .invalidName(name):
            return "cannot add '\(name)' to a ZIP archive: expected a relative path of non-empty names without '.', '..', '\\' or control characters"
        case let .duplicateName(name):
            return "cannot add '\(name)' to a ZIP archive twice"
        case let .tooLarge(bytes):
            return "the ZIP archive would take \(bytes / 1_048_576) MiB, over the 4 GiB limit of a ZIP without ZIP64 (which is not written)"
        case let .tooManyEntries(count):
            return "the ZIP archive would hold \(count) files, over the 65,534 a ZIP without ZIP64 can list"
        }
    }
}
