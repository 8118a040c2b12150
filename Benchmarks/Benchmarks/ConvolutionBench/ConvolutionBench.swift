import Benchmark
import Tensor

/// The convolution core on U-Net layer shapes at reduced sizes (so one iteration stays well under a
/// second): forward, and forward+backward through the tape, of conv2d 3x3 and the k2 s2 up-convolution.
/// The full per-layer table with SGEMM ratios is `unet bench conv` (UNet's ConvolutionReport).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
                                           warmupIterations: 1, maxDuration: .seconds(3), maxIterations: 30)

    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return Tensor.randomUniform(shape, lowerBound: -1, upperBound: 1, generator: &g)
    }

    let convShapes: [(cin: Int, cout: Int, size: Int)] = [(64, 64, 128), (128, 128, 64), (192, 64, 128), (1024, 1024, 16)]
    for s in convShapes {
        let x = random([1, s.cin, s.size, s.size], seed: 1)
        let w = random([s.cout, s.cin, 3, 3], seed: 2)
        Benchmark("conv2d 3x3 \(s.cin)->\(s.cout) @\(s.size)^2 forward") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(withoutGradients { conv2d(x, weight: w, padding: .same) }) }
        }
        Benchmark("conv2d 3x3 \(s.cin)->\(s.cout) @\(s.size)^2 forward+backward") { benchmark in
            for _ in benchmark.scaledIterations {
                let xl = x.requiringGradient(), wl = w.requiringGradient()
                conv2d(xl, weight: wl, padding: .same).sum().backward()
                blackHole(wl.gradient)
            }
        }
    }

    for (c, size) in [(128, 128), (512, 32)] {
        let x = random([1, c, size, size], seed: 3)
        let w = random([c, c, 2, 2], seed: 4)
        Benchmark("convTranspose2d k2s2 \(c)->\(c) @\(size)^2 forward") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(withoutGradients { convTranspose2d(x, weight: w, stride: 2) }) }
        }
        Benchmark("convTranspose2d k2s2 \(c)->\(c) @\(size)^2 forward+backward") { benchmark in
            for _ in benchmark.scaledIterations {
                let xl = x.requiringGradient(), wl = w.requiringGradient()
                convTranspose2d(xl, weight: wl, stride: 2).sum().backward()
                blackHole(wl.gradient)
            }
        }
    }
}
