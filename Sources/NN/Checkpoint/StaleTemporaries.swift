#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AtomicFileWriter {
    /// Deletes the temporary files that writers of processes no longer running left in `directory`
    /// (not its subfolders), and returns their names.
    ///
    /// A writer removes its temporary file when it fails or is dropped, but a process killed with
    /// SIGKILL (or by a power cut) between creating the file and renaming it leaves it behind as
    /// `.NAME.tmp-PID-N`. Such a file never replaces anything and does not stop a later write, yet each
    /// is as large as the file it was to become, so repeated kills would fill the disk with them. A file
    /// whose PID names a live process on this machine (this one included) is kept: it may be in use.
    /// Best effort: a folder that cannot be read, or a file that cannot be removed, is skipped.
    @discardableResult
    package static func removeStaleTemporaries(in directory: String) -> [String] {
        guard let dir = opendir(directory.isEmpty ? "." : directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if let pid = temporaryFileOwner(name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                names.append(name)
            }
        }
        closedir(dir)
        let prefix = directory.isEmpty ? "" : (directory.hasSuffix("/") ? directory : directory + "/")
        return names.filter { unlink(prefix + $0) == 0 }
    }

    /// The PID in a temporary file name `.NAME.tmp-PID-N` (as `init(path:)` makes them), or nil for
    /// any other name.
    static func temporaryFileOwner(_ name: String) -> pid_t? {
        let bytes = Array(name.utf8), marker = Array(".tmp-".utf8)
        guard bytes.first == UInt8(ascii: "."), bytes.count > marker.count + 1,
              let at = stride(from: bytes.count - marker.count, through: 2, by: -1)
                .first(where: { Array(bytes[$0..<($0 + marker.count)]) == marker }) else { return nil }
        let parts = String(decoding: bytes[(at + marker.count)...], as: UTF8.self)
            .split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UInt64(parts[1]) != nil else { return nil }
        return pid
    }
}
