import Foundation
import NN
import XCTest

/// A full disk during a checkpoint write and a read-only run folder (issue 17), on a small tmpfs
/// mounted in a private mount namespace (`runInMountNamespace`), so nothing leaks to the machine.
/// Each test copies the fixture's 1-epoch run onto the tmpfs, breaks the disk, runs `unet`, and
/// copies what is left back out for the assertions.
final class DiskFaultTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-disk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("disk"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("results"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    var environment: [String: String] {
        get throws {
            let f = try Fixture.shared()
            return ["DISK": folder.appendingPathComponent("disk").path, "OUT": folder.appendingPathComponent("results").path,
                    "RUN": f.run.path, "DATA": f.data.path]
        }
    }

    func testFullDiskDuringACheckpointWriteKeepsThePreviousCheckpoint() throws {
        // The disk is left with half a checkpoint of room, so the next checkpoint cannot be written;
        // then it is filled up, and `predict` writes onto it.
        let script = """
            set -u
            mount -t tmpfs -o size=4m tmpfs "$DISK" || exit 90
            cp -R "$RUN" "$DISK/run" || exit 91
            free=$(df -B1 --output=avail "$DISK" | tail -n 1)
            size=$(stat -c %s "$DISK/run/last.safetensors")
            head -c $((free - size / 2)) /dev/zero > "$DISK/filler" 2>/dev/null
            "$UNET" train --resume "$DISK/run/last.safetensors" --epochs 3 >"$OUT/train.out" 2>"$OUT/train.err"
            echo $? >"$OUT/train.status"
            "$UNET" info "$DISK/run/last.safetensors" >"$OUT/info.out" 2>"$OUT/info.err"
            echo $? >"$OUT/info.status"
            cat /dev/zero >"$DISK/filler-rest" 2>/dev/null
            "$UNET" predict --model "$DISK/run/best.safetensors" --input "$DATA/test-volume.tif" \
                --output "$DISK/run/p.tif" >"$OUT/predict.out" 2>"$OUT/predict.err"
            echo $? >"$OUT/predict.status"
            rm -f "$DISK/filler" "$DISK/filler-rest"
            mkdir "$OUT/run" && cp -R "$DISK/run/." "$OUT/run/" || exit 92
            """
        let r = try runInMountNamespace(script, environment: try environment)
        XCTAssertEqual(r.status, 0, "the namespace script failed: \(r.stderr)")
        let results = folder.appendingPathComponent("results")
        let train = try scriptRun("train", in: results)
        try expectOneLineError(train, status: 73, mentioning: ".safetensors: write failed: No space left on device")
        XCTAssertEqual(try scriptRun("info", in: results).status, 0, "the previous last.safetensors does not load")
        // Prediction onto the full disk: the output TIFF's error says why.
        try expectOneLineError(try scriptRun("predict", in: results), status: 73, mentioning: "p.tif")
        XCTAssertTrue(try scriptRun("predict", in: results).stderr.contains("No space left on device"))

        // The checkpoints are byte for byte those of epoch 1, the logs end where they do, and the
        // failed write left no temporary file.
        let f = try Fixture.shared()
        let after = results.appendingPathComponent("run")
        for name in ["last.safetensors", "best.safetensors", "metrics.csv"] {
            XCTAssertEqual(try Data(contentsOf: after.appendingPathComponent(name)),
                           try Data(contentsOf: f.run.appendingPathComponent(name)), "\(name) changed")
        }
        XCTAssertNoThrow(try SafeTensors.read(from: after.appendingPathComponent("last.safetensors").path))
        XCTAssertEqual(try temporaryFiles(under: after), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: after.appendingPathComponent("p.tif").path))
    }

    func testReadOnlyFolderIsAClearError() throws {
        let script = """
            set -u
            mount -t tmpfs -o size=4m tmpfs "$DISK" || exit 90
            cp -R "$RUN" "$DISK/run" || exit 91
            mount -o remount,ro "$DISK" || exit 92
            run() { name=$1; shift; "$UNET" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.status"; }
            run resume train --resume "$DISK/run/last.safetensors" --epochs 3
            run new train --data "$DATA" --out "$DISK/new" --epochs 1 --tile 32 --base-filters 4 --depth 2
            run predict predict --model "$DISK/run/best.safetensors" --input "$DATA/test-volume.tif" --output "$DISK/run/p.tif"
            mkdir "$OUT/run" && cp -R "$DISK/run/." "$OUT/run/" || exit 93
            """
        let r = try runInMountNamespace(script, environment: try environment)
        XCTAssertEqual(r.status, 0, "the namespace script failed: \(r.stderr)")
        let results = folder.appendingPathComponent("results")
        try expectOneLineError(try scriptRun("resume", in: results), status: 73, mentioning: "--out")
        try expectOneLineError(try scriptRun("new", in: results), status: 73, mentioning: "--out")
        try expectOneLineError(try scriptRun("predict", in: results), status: 73, mentioning: "--output")
        XCTAssertTrue(try scriptRun("resume", in: results).stderr.contains("not writable"))
        XCTAssertEqual(try snapshot(results.appendingPathComponent("run")), try snapshot(try Fixture.shared().run))
    }
}
