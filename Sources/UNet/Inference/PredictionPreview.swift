import Foundation
import Tensor

/// PNG previews of predictions: the image, the cell probability, and an overlay of the predicted
/// membrane (red) and, where labels are known, missed membrane (blue), side by side.
public enum PredictionPreview {
    /// Writes `[image | cell probability | overlay]` as one RGB PNG.
    public static func write(image: ImagePlane, probabilities: Tensor, labels: [UInt8]?, to url: URL) throws {
        let w = image.width, h = image.height, n = w * h
        precondition(probabilities.shape.count == 3 && probabilities.shape[1] == h && probabilities.shape[2] == w,
                     "PredictionPreview: probabilities \(probabilities.shape) for a \(w)x\(h) image")
        let p = probabilities.scalars
        let cell = probabilities.shape[0] > 1 ? Array(p[n..<(2 * n)]) : Array(p[0..<n])
        var rgb = [UInt8](repeating: 0, count: 3 * w * 3 * h)
        let stride = 3 * w * 3
        func gray(_ v: Float) -> UInt8 { UInt8(max(0, min(255, (v * 255).rounded()))) }
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                let g = gray(image.pixels[i]), pr = gray(cell[i])
                var o = y * stride + x * 3
                rgb[o] = g; rgb[o + 1] = g; rgb[o + 2] = g
                o += w * 3
                rgb[o] = pr; rgb[o + 1] = pr; rgb[o + 2] = pr
                o += w * 3
                let membrane = cell[i] < 0.5
                let missed = !membrane && labels.map { $0[i] == 0 } == true
                rgb[o] = membrane ? UInt8((Int(g) + 255) / 2) : g
                rgb[o + 1] = membrane || missed ? g / 2 : g
                rgb[o + 2] = missed ? UInt8((Int(g) + 255) / 2) : (membrane ? g / 2 : g)
            }
        }
        try PNG.write(rgb: rgb, width: 3 * w, height: h, to: url)
    }
}
