@testable import Tensor
import Dispatch
import Foundation
import XCTest

/// A sweep of the convolution schedule's knobs on U-Net shapes, used to choose the defaults recorded
/// in docs/PERFORMANCE.md. Runs only with UNET_CONV_TUNING=1 (about a minute):
///   UNET_CONV_TUNING=1 swift test -c release --filter ConvolutionTuning
final class ConvolutionTuning: XCTestCase {
    func testScheduleSweep() throws {
        guard ProcessInfo.processInfo.environment["UNET_CONV_TUNING"] == "1" else {
            throw XCTSkip("set UNET_CONV_TUNING=1 to run the schedule sweep")
        }
        let shapes: [(cin: Int, cout: Int, size: Int, k: Int, s: Int)] = [(64, 64, 512, 3, 1), (128, 128, 256, 3, 1), (512, 512, 64, 3, 1), (128, 128, 512, 2, 2)]
        let savedBlock = ConvolutionWorkspace.preferredBlockBytes
        defer { ConvolutionWorkspace.preferredBlockBytes = savedBlock; ConvolutionKernels.allowLanes = true }
        for shape in shapes {
            let pad = shape.k == 3 ? 1 : 0
            let g = ConvGeometry(batch: 1, inChannels: shape.cin, height: shape.size, width: shape.size, outChannels: shape.cout,
                                 kernelHeight: shape.k, kernelWidth: shape.k, stride: shape.s, padTop: pad, padBottom: pad, padLeft: pad, padRight: pad)
            let x = randomTensor([1, shape.cin, shape.size, shape.size], seed: 1)
            let w = randomTensor([shape.cout, shape.cin, shape.k, shape.k], seed: 2)
            let y = randomTensor([1, shape.cout, g.outHeight, g.outWidth], seed: 3)
            let dw = Tensor(uninitializedShape: w.shape)
            for lanes in [true, false] {
                for blockMB in [1, 2, 4, 8, 16] {
                    ConvolutionKernels.allowLanes = lanes
                    ConvolutionWorkspace.preferredBlockBytes = blockMB << 20
                    func time(_ body: () -> Void) -> Double {
                        body()
                        var t: [Double] = []
                        for _ in 0..<5 {
                            let s = DispatchTime.now().uptimeNanoseconds
                            body()
                            t.append(Double(DispatchTime.now().uptimeNanoseconds - s) * 1e-9)
                        }
                        return t.min()!  // least disturbed run on a shared machine
                    }
                    let f = time { ConvolutionKernels.forward(g, input: x.storage.pointer, weight: w.storage.pointer, bias: nil, output: y.storage.pointer) }
                    let d = time { ConvolutionKernels.backwardData(g, outputGradient: y.storage.pointer, weight: w.storage.pointer, inputGradient: x.storage.pointer) }
                    let b = time { ConvolutionKernels.backwardWeight(g, input: x.storage.pointer, outputGradient: y.storage.pointer, weightGradient: dw.storage.pointer, biasGradient: nil) }
                    let gf = g.flops / 1e9
                    print(String(format: "TUNE %d->%d k%d s%d @%d lanes %@ block %2d MB: fwd %6.1f ms (%5.1f GF/s) bwd-data %6.1f ms (%5.1f) bwd-weight %6.1f ms (%5.1f)",
                                 shape.cin, shape.cout, shape.k, shape.s, shape.size, lanes ? "yes" : "no ", blockMB,
                                 f * 1e3, gf / f, d * 1e3, gf / d, b * 1e3, gf / b))
                }
            }
        }
    }
}
