import Foundation
@testable import UNet
import XCTest

final class EnsembleManifestTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-ensemble-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testRoundTripAndMemberPaths() throws {
        XCTAssertFalse(EnsembleManifest.exists(in: folder))
        let manifest = EnsembleManifest(members: ["seed-5", "seed-6"], seeds: [5, 6],
                                        trainArguments: [["train", "--seed", "5"], ["train", "--seed", "6"]])
        try manifest.save(to: folder)
        XCTAssertTrue(EnsembleManifest.exists(in: folder))
        XCTAssertEqual(try EnsembleManifest.load(from: folder), manifest)
        XCTAssertEqual(manifest.bestCheckpoints(in: folder).map(\.path),
                       [folder.appendingPathComponent("seed-5/best.safetensors").path, folder.appendingPathComponent("seed-6/best.safetensors").path])
        XCTAssertEqual(EnsembleManifest.memberName(seed: 5), "seed-5")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["ensemble.json"], "no temporary file left")
    }

    func testBadManifestsNameTheFileAndTheProblem() throws {
        let path = folder.appendingPathComponent("ensemble.json").path
        func expect(_ json: String?, _ reason: String, line: UInt = #line) {
            try? FileManager.default.removeItem(atPath: path)
            if let json { _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8)) }
            XCTAssertThrowsError(try EnsembleManifest.load(from: folder), line: line) { error in
                guard let error = error as? EnsembleManifestError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(error.path, path, line: line)
                XCTAssertTrue(error.description.hasPrefix(path), error.description, line: line)
                XCTAssertTrue(error.reason.contains(reason), "\(error.reason) does not say '\(reason)'", line: line)
            }
        }
        func manifest(format: String = "unet-ensemble", version: Int = 1, members: String = #"["seed-0"]"#,
                      seeds: String = "[0]", arguments: String = #"[["train"]]"#) -> String {
            #"{"format":"\#(format)","version":\#(version),"members":\#(members),"seeds":\#(seeds),"trainArguments":\#(arguments)}"#
        }
        expect(nil, "cannot be read")
        expect("", "not an ensemble manifest")
        expect("{\"format\":", "not an ensemble manifest")
        expect(#"{"members":["a"]}"#, "not an ensemble manifest")
        expect(manifest(format: "zip"), "format \"zip\"")
        expect(manifest(version: 2), "version 2")
        expect(manifest(version: 0), "version 0")
        expect(manifest(members: "[]", seeds: "[]", arguments: "[]"), "no members")
        expect(manifest(seeds: "[0, 1]"), "1 members but 2 seeds")
        expect(manifest(members: #"["../outside"]"#), "member \"../outside\"")
        expect(manifest(members: #"["a/b"]"#), "member \"a/b\"")
        expect(manifest(members: #"[".."]"#), "member \"..\"")
        expect(manifest(members: #"[""]"#), "member \"\"")
        expect(manifest(members: #"["a", "a"]"#, seeds: "[0, 1]", arguments: #"[[], []]"#), "listed twice")
    }
}
