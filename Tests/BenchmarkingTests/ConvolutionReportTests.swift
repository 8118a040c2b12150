import Benchmarking
import Foundation
import Tensor
import UNet
import XCTest

final class ConvolutionReportTests: XCTestCase {
    func testQuickReportRowsAreWellFormed() throws {
        let rows = ConvolutionReport.run(quick: true)
        XCTAssertEqual(rows.count, ConvolutionReport.quickLayers.count * 3)
        XCTAssertEqual(rows.map(\.layer), ConvolutionReport.quickLayers.flatMap { [$0, $0, $0] })
        for r in rows {
            let m = r.measurement
            XCTAssertTrue(["forward", "backward-data", "backward-weight"].contains(m.op), m.op)
            XCTAssertTrue(m.seconds > 0 && m.seconds.isFinite, "\(r)")
            XCTAssertTrue(m.gflops > 0 && m.gflops.isFinite, "\(r)")
            XCTAssertTrue(m.sgemmGflops > 0 && m.sgemmGflops.isFinite, "\(r)")
            XCTAssertEqual(m.ratio, m.gflops / m.sgemmGflops, accuracy: 1e-9 * m.ratio, "\(r)")
            let paths = ["winograd F4", "winograd F2", "tap", "im2col", "pointwise", "scatter", "col2im"]
            XCTAssertTrue(paths.contains(m.path) || paths.contains(m.path.replacingOccurrences(of: "flipped ", with: "")), "\(r)")
        }
        // One flat JSON object per row, with the layer's keys and the measurement's.
        let json = ConvolutionReport.json(rows)
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual(objects.count, rows.count)
        for key in ["name", "op", "cin", "cout", "h", "w", "kernel", "stride", "batch", "transposed", "seconds", "gflops",
                    "sgemm_gflops", "ratio", "sgemm_m", "sgemm_n", "sgemm_k", "path"] {
            XCTAssertNotNil(objects.first?[key], key)
        }
        XCTAssertEqual(objects.first?.count, 18, "no nested objects")
        let decoded = try JSONDecoder().decode([ConvolutionReport.Row].self, from: Data(json.utf8))
        XCTAssertEqual(decoded, rows)
        XCTAssertTrue(ConvolutionReport.table(rows).contains("| up1@32 | forward | scatter |"))
        XCTAssertTrue(ConvolutionReport.table(rows).contains("| final-1x1@64 | forward | pointwise |"))
    }
}
