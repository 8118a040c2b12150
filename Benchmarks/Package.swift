// swift-tools-version:6.1
// Benchmarks of swift-unet, kept out of the main package so its builds and CI never pay for
// ordo-one/benchmark (about 2 minutes to build). Run from this folder:
//   swift package benchmark                       (all suites)
//   swift package benchmark --filter ".*k2s2.*"   (a subset: the regex must match the whole name)
//   swift package benchmark list
import Foundation
import PackageDescription

// A `.package(path:)` dependency is known by its folder's name (e.g. "main", "wt-conv", a CI clone).
let rootIdentity = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "SwiftUNetBenchmarks",
    dependencies: [
        .package(path: ".."),
        // MallocInterposer: the default RuntimeInterposer trait needs a package this machine's mirror lacks.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ConvolutionBench",
            dependencies: [.product(name: "Tensor", package: rootIdentity), .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/ConvolutionBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "NormBench",
            dependencies: [.product(name: "Tensor", package: rootIdentity), .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/NormBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ModelBench",
            dependencies: [.product(name: "UNet", package: rootIdentity), .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/ModelBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
