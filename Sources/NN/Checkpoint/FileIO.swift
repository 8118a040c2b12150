#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin POSIX file helpers for checkpoint I/O: exact reads at offsets, complete writes, and atomic
/// replacement (temporary file in the same directory, fsync, rename, fsync of the directory).
enum FileIO {
    static func systemError() -> String { String(cString: strerror(errno)) }

    /// An open file for reading with its size.
    final class Reader {
        let path: String
        let fd: Int32
        let size: Int

        init(path: String) throws {
            self.path = path
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SafeTensorsError(path: path, problem: .cannotOpen(reason: FileIO.systemError())) }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let reason = FileIO.systemError()
                close(fd)
                throw SafeTensorsError(path: path, problem: .cannotOpen(reason: reason))
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw SafeTensorsError(path: path, problem: .notARegularFile)
            }
            self.fd = fd
            size = Int(info.st_size)
        }

        deinit { close(fd) }

        /// Reads exactly `count` bytes at `offset` into `destination`.
        func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
            var done = 0
            while done < count {
                let n = pread(fd, destination + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafeTensorsError(path: path, problem: .readFailed(reason: FileIO.systemError()))
                }
                if n == 0 {
                    throw SafeTensorsError(path: path, problem: .readFailed(
                        reason: "unexpected end of file at byte \(offset + done) (the file changed while being read?)"))
                }
                done += n
            }
        }

        /// Reads exactly `count` bytes at `offset`; `count` must already be checked against `size`.
        func readBytes(count: Int, at offset: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            try bytes.withUnsafeMutableBytes { raw in
                if count > 0 { try read(into: raw.baseAddress!, count: count, at: offset) }
            }
            return bytes
        }
    }
}

/// A temporary file in the destination's folder that becomes `path` on `commit()` (fsync, rename,
/// fsync of the folder), or disappears if never committed: a crash or `kill -9` leaves either the old
/// file or the complete new one. Used for checkpoints and image outputs; package-only plumbing (its
/// failures reach users as `FileWriteError`).
package final class AtomicFileWriter {
    /// The destination.
    package let path: String
    let temporaryPath: String
    private var fd: Int32
    private var committed = false

    /// Creates the temporary file next to `path`.
    package init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var random = SystemRandomNumberGenerator()
        temporaryPath = (directory.isEmpty ? "" : directory + "/") + ".\(name).tmp-\(getpid())-\(random.next() % 1_000_000_000)"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileWriteError(path: path, reason: "cannot create a temporary file \(temporaryPath): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }

    /// Appends `count` bytes.
    package func write(_ source: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let n = systemWrite(fd, source + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Appends `bytes`.
    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            if raw.count > 0 { try write(raw.baseAddress!, count: raw.count) }
        }
    }

    /// Flushes the data to disk, renames the temporary file over `path` and syncs the directory,
    /// so a crash leaves either the old file or the complete new one.
    package func commit() throws {
        guard fsync(fd) == 0 else {
            throw FileWriteError(path: path, reason: "fsync: \(String(cString: strerror(errno)))")
        }
        let result = close(fd)
        fd = -1
        guard result == 0 else {
            throw FileWriteError(path: path, reason: "close: \(String(cString: strerror(errno)))")
        }
        guard rename(temporaryPath, path) == 0 else {
            throw FileWriteError(path: path, reason: "rename: \(String(cString: strerror(errno)))")
        }
        committed = true
        Self.syncFolder(of: path)
    }

    /// Flushes the folder holding `path` to disk, so a rename into it survives a crash. Best effort:
    /// some file systems refuse fsync on directories.
    package static func syncFolder(of path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// Flushes the data of the closed file at `path` to disk; the system's reason on failure.
    package static func syncFile(at path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
    }

    /// Writes `bytes` to `path` atomically.
    package static func write(_ bytes: [UInt8], to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }
}

/// Writing a file failed; names the file and the system's reason.
public struct FileWriteError: Error, CustomStringConvertible, Equatable {
    /// The destination.
    public let path: String
    /// What went wrong.
    public let reason: String
    /// `"<path>: write failed: <reason>"`.
    public var description: String { "\(path): write failed: \(reason)" }
}

/// `write(2)`, named apart from `AtomicFileWriter.write`.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
