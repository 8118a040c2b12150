import Dispatch
import Foundation
import Tensor

/// Times the convolution kernels on every convolution of the tutorial U-Net (512^2 input, base 64)
/// and, in the same run, a bare `cblas_sgemm` of the same GEMM shape, so each row shows how close
/// the convolution gets to BLAS.
///
/// Use from the CLI as `unet bench conv [--json]` (wired to `ConvolutionReport.run` and
/// `ConvolutionReport.table` / `ConvolutionReport.json`), or from code:
/// ```swift
/// let rows = ConvolutionReport.run()            // 1-2 minutes on 2 cores
/// print(ConvolutionReport.table(rows))
/// ```
/// Timings are medians of `repetitions` runs after one warm-up, on preallocated buffers (the kernels
/// as the ops call them, without tensor allocation or tape bookkeeping), with `Threads.count` threads.
public enum ConvolutionReport {
    /// The three kernels of a convolution.
    public enum Op: String, Codable, Sendable, CaseIterable {
        /// The output from the input.
        case forward
        /// The input gradient from the output gradient.
        case backwardData = "backward-data"
        /// The weight gradient from the input and the output gradient.
        case backwardWeight = "backward-weight"
    }

    /// One layer shape of the report. `h`, `w` are the layer's input size.
    public struct Layer: Codable, Sendable, Equatable {
        /// The layer's name in the U-Net, e.g. "enc2b/dec2b" for a shape two layers share.
        public var name: String
        /// Input channels.
        public var cin: Int
        /// Output channels.
        public var cout: Int
        /// Input height.
        public var h: Int
        /// Input width.
        public var w: Int
        /// Kernel side (square kernels; "same" padding for odd sides, none for even ones).
        public var kernel: Int
        /// Stride in both axes.
        public var stride: Int
        /// A transposed convolution (weight `[cin, cout, k, k]`, output `h*stride x w*stride`).
        public var transposed: Bool
        /// Images per call.
        public var batch: Int

        /// A layer; the defaults are a 3x3 stride-1 convolution on one image.
        public init(name: String, cin: Int, cout: Int, h: Int, w: Int, kernel: Int = 3, stride: Int = 1,
                    transposed: Bool = false, batch: Int = 1) {
            self.name = name; self.cin = cin; self.cout = cout; self.h = h; self.w = w
            self.kernel = kernel; self.stride = stride; self.transposed = transposed; self.batch = batch
        }

        /// The convolution whose kernels run this layer (for a transposed layer, the one it is the adjoint of).
        package var geometry: ConvGeometry {
            if transposed {
                return ConvGeometry(batch: batch, inChannels: cout, height: h * stride, width: w * stride, outChannels: cin,
                                    kernelHeight: kernel, kernelWidth: kernel, stride: stride)
            }
            let pad = (kernel - 1) / 2
            return ConvGeometry(batch: batch, inChannels: cin, height: h, width: w, outChannels: cout,
                                kernelHeight: kernel, kernelWidth: kernel, stride: stride,
                                padTop: pad, padBottom: kernel - 1 - pad, padLeft: pad, padRight: kernel - 1 - pad)
        }
    }

    /// What one measurement of a layer found.
    public struct Measurement: Codable, Sendable, Equatable {
        /// "forward", "backward-data" or "backward-weight" (of the layer as named: for a transposed
        /// convolution, its forward is the underlying convolution's backward-data and vice versa).
        public var op: String
        /// The algorithm the kernels chose for it: "winograd F4"/"winograd F2" (forward by
        /// Winograd's minimal filtering), "tap" (one GEMM per kernel tap), "im2col", "pointwise",
        /// "scatter" (non-overlapping col2im), "col2im", or "flipped " and the forward path when
        /// backward-data runs as the forward convolution of the flipped kernel.
        public var path: String
        /// Median wall time of one call.
        public var seconds: Double
        /// Useful FLOPs per second, in units of 1e9, counted as the direct convolution's
        /// (`2 * N * Cout * Cin * kh * kw * outH * outW`) whatever the path: for Winograd, which
        /// does fewer multiplications, an effective rate that can exceed the bare SGEMM's.
        public var gflops: Double
        /// Rate of a bare `cblas_sgemm` with this op's GEMM shape (all threads inside BLAS).
        public var sgemmGflops: Double
        /// `gflops / sgemmGflops`.
        public var ratio: Double
        /// The bare GEMM's rows (row-major M x N with inner K). The pixel extent is capped so that
        /// no operand exceeds 256 MiB; the rate is flat in that extent at these sizes.
        public var sgemmM: Int
        /// The bare GEMM's columns.
        public var sgemmN: Int
        /// The bare GEMM's inner dimension.
        public var sgemmK: Int

        enum CodingKeys: String, CodingKey {
            case op, path, seconds, gflops, ratio
            case sgemmGflops = "sgemm_gflops", sgemmM = "sgemm_m", sgemmN = "sgemm_n", sgemmK = "sgemm_k"
        }
    }

    /// One row of the report: a layer and what was measured on it. Its JSON is one flat object
    /// with the keys of both: `name, cin, cout, h, w, kernel, stride, batch, transposed, op, path,
    /// seconds, gflops, sgemm_gflops, ratio, sgemm_m, sgemm_n, sgemm_k`.
    public struct Row: Codable, Sendable, Equatable {
        /// The layer.
        public var layer: Layer
        /// The op measured on it and the rates.
        public var measurement: Measurement

        /// A row of `measurement` on `layer`.
        public init(layer: Layer, measurement: Measurement) {
            self.layer = layer
            self.measurement = measurement
        }

        /// Reads the flat object `encode(to:)` writes.
        public init(from decoder: Decoder) throws {
            layer = try Layer(from: decoder)
            measurement = try Measurement(from: decoder)
        }

        /// Writes the layer's and the measurement's keys into one object.
        public func encode(to encoder: Encoder) throws {
            try layer.encode(to: encoder)
            try measurement.encode(to: encoder)
        }
    }

    /// Every distinct convolution of the tutorial U-Net at 512^2, base 64 (encoder, bottleneck, the four
    /// k2 s2 up-convolutions, the decoder convolutions on concatenated inputs, the final 1x1).
    public static var unetLayers: [Layer] { layers(baseFilters: 64, size: 512, batch: 1) }

    /// Every distinct convolution of a depth-4 tutorial U-Net (same padding, up-convolutions that keep
    /// the channel count, 2 classes) with `baseFilters` filters on `batch` x `size`^2 inputs; `size`
    /// must be a multiple of 16. Names are those of `unetLayers` (e.g. "enc2b/dec2b").
    public static func layers(baseFilters f: Int, size: Int, batch: Int) -> [Layer] {
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ level: Int, kernel: Int = 3) -> Layer {
            Layer(name: name, cin: cin, cout: cout, h: size >> level, w: size >> level, kernel: kernel, batch: batch)
        }
        func up(_ name: String, _ channels: Int, _ level: Int) -> Layer {
            Layer(name: name, cin: channels, cout: channels, h: size >> level, w: size >> level, kernel: 2, stride: 2,
                  transposed: true, batch: batch)
        }
        return [
            conv("enc1a", 1, f, 0), conv("enc1b/dec1b", f, f, 0),
            conv("enc2a", f, 2 * f, 1), conv("enc2b/dec2b", 2 * f, 2 * f, 1),
            conv("enc3a", 2 * f, 4 * f, 2), conv("enc3b/dec3b", 4 * f, 4 * f, 2),
            conv("enc4a", 4 * f, 8 * f, 3), conv("enc4b/dec4b", 8 * f, 8 * f, 3),
            conv("bottleneck-a", 8 * f, 16 * f, 4), conv("bottleneck-b", 16 * f, 16 * f, 4),
            up("up4", 16 * f, 4), conv("dec4a", 24 * f, 8 * f, 3),
            up("up3", 8 * f, 3), conv("dec3a", 12 * f, 4 * f, 2),
            up("up2", 4 * f, 2), conv("dec2a", 6 * f, 2 * f, 1),
            up("up1", 2 * f, 1), conv("dec1a", 3 * f, f, 0),
            conv("final-1x1", f, 2, 0, kernel: 1),
        ]
    }

    /// A small subset at reduced sizes (a few seconds), for tests and smoke runs.
    public static var quickLayers: [Layer] {
        [
            Layer(name: "enc1b@64", cin: 64, cout: 64, h: 64, w: 64),
            Layer(name: "dec1a@64", cin: 192, cout: 64, h: 64, w: 64),
            Layer(name: "up1@32", cin: 128, cout: 128, h: 32, w: 32, kernel: 2, stride: 2, transposed: true),
            Layer(name: "final-1x1@64", cin: 64, cout: 2, h: 64, w: 64, kernel: 1),
        ]
    }

    /// Runs the report: for each layer and op, the convolution kernel's median time and the bare SGEMM
    /// rate. `quick` uses `quickLayers` with one repetition. `progress` sees each row as it is measured.
    public static func run(quick: Bool = false, layers: [Layer]? = nil, repetitions: Int? = nil,
                           progress: ((Row) -> Void)? = nil) -> [Row] {
        run(quick: quick, layers: layers, repetitions: repetitions, policy: .automatic, progress: progress)
    }

    /// `run` with the kernels under `policy` (`unet bench conv --parallelism`).
    package static func run(quick: Bool = false, layers: [Layer]? = nil, repetitions: Int? = nil,
                            policy: ConvolutionPolicy, progress: ((Row) -> Void)? = nil) -> [Row] {
        let chosen = layers ?? (quick ? quickLayers : unetLayers)
        let reps = repetitions ?? (quick ? 1 : 5)
        var rows: [Row] = []
        for layer in chosen {
            for op in Op.allCases {
                let row = measure(layer, op, repetitions: reps, policy: policy)
                progress?(row)
                rows.append(row)
            }
        }
        return rows
    }

    /// Measures one layer and op with the kernels under `policy`.
    package static func measure(_ layer: Layer, _ op: Op, repetitions: Int = 3, policy: ConvolutionPolicy = .automatic) -> Row {
        let g = layer.geometry
        let x = filledBuffer(g.batch * g.inChannels * g.inPixels, seed: 1)
        let wt = filledBuffer(g.outChannels * g.columnRows, seed: 2)
        let y = filledBuffer(g.batch * g.outChannels * g.outPixels, seed: 3)
        defer { x.deallocate(); wt.deallocate(); y.deallocate() }
        // The layer's op in terms of the underlying convolution's kernels.
        let kernel: Op
        switch (op, layer.transposed) {
        case (.forward, true): kernel = .backwardData
        case (.backwardData, true): kernel = .forward
        default: kernel = op
        }
        let body: () -> Void
        let path: String
        switch kernel {
        case .forward: path = ConvolutionKernels.forwardPath(g, policy: policy)
        case .backwardData: path = ConvolutionKernels.backwardDataPath(g, policy: policy)
        case .backwardWeight: path = ConvolutionKernels.backwardWeightPath(g, policy: policy)
        }
        switch kernel {
        case .forward:
            body = { ConvolutionKernels.forward(g, input: x, weight: wt, bias: nil, output: y, policy: policy) }
        case .backwardData:
            body = { ConvolutionKernels.backwardData(g, outputGradient: y, weight: wt, inputGradient: x, policy: policy) }
        case .backwardWeight:
            // For a transposed layer too: its weight gradient is the underlying convolution's, with
            // the layer's output gradient as `input` (x) and the layer's input as `outputGradient` (y).
            body = {
                ConvolutionKernels.backwardWeight(g, input: x, outputGradient: y, weightGradient: wt, biasGradient: nil, policy: policy)
            }
        }
        let bare = bareSgemm(g, kernel)
        defer { bare.deallocate() }
        // Back to back, so both see about the same machine load (it is shared and noisy).
        let (seconds, bareSeconds) = medianSeconds(repetitions: repetitions, body, bare.run)
        let sgemmGflops = bare.flops / bareSeconds / 1e9
        let gflops = g.flops / seconds / 1e9
        return Row(layer: layer, measurement: Measurement(
            op: op.rawValue, path: path, seconds: seconds, gflops: gflops, sgemmGflops: sgemmGflops, ratio: gflops / sgemmGflops,
            sgemmM: bare.m, sgemmN: bare.n, sgemmK: bare.k))
    }

    /// The bare SGEMM of a kernel's GEMM shape over the whole batch, its pixel extent (N, or K for
    /// the weight gradient) capped so that no operand exceeds 256 MiB.
    static func bareSgemm(_ g: ConvGeometry, _ op: Op) -> BareSgemm {
        let pixels = g.batch * g.outPixels, capFloats = 1 << 26
        func capped(_ extent: Int, _ other: Int) -> Int { max(1, min(pixels, capFloats / max(extent, other))) }
        switch op {
        case .forward:
            return BareSgemm(m: g.outChannels, n: capped(g.columnRows, g.outChannels), k: g.columnRows)
        case .backwardData:
            return BareSgemm(m: g.columnRows, n: capped(g.outChannels, g.columnRows), k: g.outChannels, transposeA: true)
        case .backwardWeight:
            return BareSgemm(m: g.outChannels, n: g.columnRows, k: capped(g.outChannels, g.columnRows), transposeB: true)
        }
    }

    /// Median seconds of `ours`, then of `bare`, each after one warm-up. `bare` runs OpenBLAS's own
    /// threads, whose idle workers then spin for ~0.1 s and would take a core from the next
    /// measurement, so this waits 0.25 s after it (with more than one thread).
    static func medianSeconds(repetitions: Int, _ ours: () -> Void, _ bare: () -> Void) -> (Double, Double) {
        ours()  // warm-up: workspace pool, page faults, BLAS buffers
        let a = (0..<max(1, repetitions)).map { _ in wallSeconds(ours) }
        bare()
        let b = (0..<max(1, repetitions)).map { _ in wallSeconds(bare) }
        BareSgemm.waitForIdleWorkers()
        return (median(a)!, median(b)!)
    }

    /// A fixed-width text table of the rows (markdown-compatible).
    public static func table(_ rows: [Row]) -> String {
        var lines = ["| layer | op | path | cin->cout | input | ms | GFLOP/s | sgemm GFLOP/s | ratio |",
                     "|---|---|---|---|---|---:|---:|---:|---:|"]
        for row in rows {
            let l = row.layer, m = row.measurement
            let kind = l.transposed ? "T k\(l.kernel)s\(l.stride)" : "k\(l.kernel)"
            lines.append("| \(l.name) | \(m.op) | \(m.path) | \(l.cin)->\(l.cout) \(kind) | \(l.batch)x\(l.h)x\(l.w) | "
                + String(format: "%.1f | %.1f | %.1f | %.2f |", m.seconds * 1e3, m.gflops, m.sgemmGflops, m.ratio))
        }
        return lines.joined(separator: "\n")
    }

    /// The rows as a JSON array (one flat object per row, keys as in `Row`).
    public static func json(_ rows: [Row]) -> String { jsonString(rows) }
}
