import Foundation
import XCTest

/// `--exact-conv` and `UNET_CONV` choose whether 3x3 convolutions may run by Winograd's algorithm
/// (seen in the path `bench conv` reports for the 64->64 layer of a base-64 U-Net on 4 x 64^2,
/// which the default schedule runs by F(4x4)); `--conv-algorithm` forces one; a bad `UNET_CONV`
/// value and a bad `--conv-algorithm` exit 64 naming it.
final class ConvolutionModeTests: XCTestCase {
    /// The path of the report's 64->64 forward row (`enc1b/dec1b` of the base-64 U-Net on 4 x 64^2,
    /// or `enc1b@64` of `--quick`).
    func forwardPath(_ arguments: [String], quick: Bool = false, environment: [String] = []) throws -> String? {
        let launcher = environment.isEmpty ? nil : ["/usr/bin/env"] + environment
        let shape = quick ? ["--quick"] : ["--base-filters", "64", "--size", "64", "--batch", "4", "--repetitions", "1"]
        let r = try start(["bench", "conv", "--threads", "1", "--json"] + shape + arguments, launcher: launcher).finish()
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let rows = object?["rows"] as? [[String: Any]] ?? []
        let name = quick ? "enc1b@64" : "enc1b/dec1b"
        return rows.first { $0["name"] as? String == name && $0["op"] as? String == "forward" }?["path"] as? String
    }

    func testExactConvFlagAndEnvironment() throws {
        XCTAssertEqual(try forwardPath([]), "winograd F4")
        XCTAssertEqual(try forwardPath(["--exact-conv"]), "tap")
        XCTAssertEqual(try forwardPath([], environment: ["UNET_CONV=exact"]), "tap")
        XCTAssertEqual(try forwardPath([], environment: ["UNET_CONV=fast"]), "winograd F4")
        XCTAssertEqual(try forwardPath(["--conv-algorithm", "f2"], quick: true), "winograd F2")
        XCTAssertEqual(try forwardPath(["--conv-algorithm", "f4", "--exact-conv"], quick: true), "winograd F4")
        XCTAssertEqual(try forwardPath(["--conv-algorithm", "exact"], quick: true), "tap")
        try expectOneLineError(try start(["system"], launcher: ["/usr/bin/env", "UNET_CONV=sometimes"]).finish(),
                               status: 64, mentioning: "UNET_CONV=sometimes")
        let bad = try unet(["bench", "conv", "--quick", "--conv-algorithm", "f6"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--conv-algorithm"), bad.stderr)
    }
}
