import Foundation
import XCTest

/// `--exact-conv` and `UNET_CONV` choose whether 3x3 convolutions may run by Winograd's algorithm
/// (seen in the path `bench conv` reports for the quick 64->64 layer); a bad `UNET_CONV` value
/// and a bad `--conv-algorithm` exit 64 naming it.
final class ConvolutionModeTests: XCTestCase {
    /// The path of the quick report's `enc1b@64` forward row.
    func forwardPath(_ arguments: [String], environment: [String] = []) throws -> String? {
        let launcher = environment.isEmpty ? nil : ["/usr/bin/env"] + environment
        let r = try start(["bench", "conv", "--quick", "--threads", "1", "--json"] + arguments, launcher: launcher).finish()
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let rows = object?["rows"] as? [[String: Any]] ?? []
        return rows.first { $0["name"] as? String == "enc1b@64" && $0["op"] as? String == "forward" }?["path"] as? String
    }

    func testExactConvFlagAndEnvironment() throws {
        XCTAssertEqual(try forwardPath([]), "winograd F4")
        XCTAssertEqual(try forwardPath(["--exact-conv"]), "tap")
        XCTAssertEqual(try forwardPath([], environment: ["UNET_CONV=exact"]), "tap")
        XCTAssertEqual(try forwardPath([], environment: ["UNET_CONV=fast"]), "winograd F4")
        XCTAssertEqual(try forwardPath(["--conv-algorithm", "f2"]), "winograd F2")
        XCTAssertEqual(try forwardPath(["--conv-algorithm", "exact"]), "tap")
        try expectOneLineError(try start(["system"], launcher: ["/usr/bin/env", "UNET_CONV=sometimes"]).finish(),
                               status: 64, mentioning: "UNET_CONV=sometimes")
        let bad = try unet(["bench", "conv", "--quick", "--conv-algorithm", "f6"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--conv-algorithm"), bad.stderr)
    }
}
