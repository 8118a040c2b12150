import Benchmarking
import Foundation
import Tensor
import UNet
import XCTest

final class ConvolutionReportTests: XCTestCase {
    func testQuickReportRowsAreWellFormed() throws {
        let rows = ConvolutionReport.run(quick: true)
        XCTAssertEqual(rows.count, ConvolutionReport.quickLayers.count * 3)
        for r in rows {
            XCTAssertTrue(["forward", "backward-data", "backward-weight"].contains(r.op), r.op)
            XCTAssertTrue(r.seconds > 0 && r.seconds.isFinite, "\(r)")
            XCTAssertTrue(r.gflops > 0 && r.gflops.isFinite, "\(r)")
            XCTAssertTrue(r.sgemmGflops > 0 && r.sgemmGflops.isFinite, "\(r)")
            XCTAssertTrue(r.cin > 0 && r.cout > 0 && r.h > 0 && r.w > 0, "\(r)")
        }
        let json = ConvolutionReport.json(rows)
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual(objects.count, rows.count)
        for key in ["name", "op", "cin", "cout", "h", "w", "seconds", "gflops", "sgemm_gflops"] {
            XCTAssertNotNil(objects.first?[key], key)
        }
        let decoded = try JSONDecoder().decode([ConvolutionReport.Row].self, from: Data(json.utf8))
        XCTAssertEqual(decoded, rows)
        XCTAssertTrue(ConvolutionReport.table(rows).contains("| up1@32 | forward |"))
    }

    /// The whole report (1-2 minutes): runs only with UNET_CONV_REPORT=1, printing the table
    /// (and the JSON to the file named by UNET_CONV_REPORT_JSON, if set).
    func testFullReport() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_REPORT"] == "1" else {
            throw XCTSkip("set UNET_CONV_REPORT=1 to run the full convolution report")
        }
        let filter = ProcessInfo.processInfo.environment["UNET_CONV_REPORT_LAYERS"].map { $0.split(separator: ",").map(String.init) }
        let layers = ConvolutionReport.unetLayers.filter { filter == nil || filter!.contains($0.name) }
        let rows = ConvolutionReport.run(layers: layers) { row in
            print(ConvolutionReport.table([row]).split(separator: "\n").last!)
        }
        print(ConvolutionReport.table(rows))
        if let path = ProcessInfo.processInfo.environment["UNET_CONV_REPORT_JSON"] {
            try ConvolutionReport.json(rows).write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
