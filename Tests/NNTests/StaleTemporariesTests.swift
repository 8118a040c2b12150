import Foundation
@testable import NN
import XCTest

/// `AtomicFileWriter.removeStaleTemporaries(in:)` deletes exactly the temporary files of writers whose
/// process is gone, which a `kill -9` during a write leaves behind.
final class StaleTemporariesTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-stale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A PID that names no process now.
    func deadPID() throws -> Int32 {
        for pid in stride(from: Int32(4_000_000), to: 3_000_000, by: -7) where kill(pid, 0) != 0 && errno == ESRCH {
            return pid
        }
        throw XCTSkip("no unused PID found")
    }

    func testRemovesOnlyTheTemporaryFilesOfDeadProcesses() throws {
        let dead = try deadPID()
        let names = [
            ".last.safetensors.tmp-\(dead)-123456",        // a killed writer's: removed
            ".epoch-001-slice-04.png.tmp-\(dead)-7",        // likewise
            ".best.safetensors.tmp-\(getpid())-99",         // this process's (in use): kept
            ".config.json.tmp-1-5",                         // PID 1 is alive: kept
            "last.safetensors", ".hidden", ".tmp-\(dead)-1", // not temporary files: kept
            ".a.tmp-\(dead)-x", ".b.tmp-\(dead)", "c.tmp-\(dead)-1",
        ]
        for name in names { try Data("x".utf8).write(to: folder.appendingPathComponent(name)) }
        let removed = AtomicFileWriter.removeStaleTemporaries(in: folder.path)
        XCTAssertEqual(Set(removed), [names[0], names[1]])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), Set(names.dropFirst(2)))
        XCTAssertEqual(AtomicFileWriter.removeStaleTemporaries(in: folder.path), [])
    }

    func testTheNamesTheWriterMakesAreRecognised() throws {
        let writer = try AtomicFileWriter(path: folder.appendingPathComponent("model.safetensors").path)
        let name = URL(fileURLWithPath: writer.temporaryPath).lastPathComponent
        XCTAssertEqual(AtomicFileWriter.temporaryFileOwner(name), getpid())
        // Its own process is alive: nothing is removed while it writes.
        XCTAssertEqual(AtomicFileWriter.removeStaleTemporaries(in: folder.path), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: writer.temporaryPath))
        XCTAssertNil(AtomicFileWriter.temporaryFileOwner("model.safetensors"))
        XCTAssertNil(AtomicFileWriter.temporaryFileOwner(".tmp-12-3"))
    }

    func testAMissingFolderIsNoError() {
        XCTAssertEqual(AtomicFileWriter.removeStaleTemporaries(in: folder.appendingPathComponent("none").path), [])
    }
}
