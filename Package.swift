// swift-tools-version:6.1
import PackageDescription

// Dependencies flow one way: Tensor <- NN <- UNet <- unet-cli.
// The modules are compiled in the Swift 5 language mode: the kernels hand raw buffer pointers to
// `DispatchQueue.concurrentPerform` workers, which Swift 6's Sendable checking would force through
// unchecked wrappers at every call site without adding safety.
let package = Package(
    name: "swift-unet",
    products: [
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "UNet", targets: ["UNet"]),
        .library(name: "Benchmarking", targets: ["Benchmarking"]),
        .library(name: "MPICollective", targets: ["MPICollective"]),
        .executable(name: "unet", targets: ["unet-cli"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CTIFFShim", dependencies: ["CTIFF"]),
        .target(name: "Tensor", dependencies: ["COpenBLAS"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "NN", dependencies: ["Tensor"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "UNet", dependencies: ["NN", "Tensor", "CTIFF", "CTIFFShim", "CPNG"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Timing reports and the system report behind `unet bench` / `unet system`, kept out of UNet.
        .target(name: "Benchmarking", dependencies: ["UNet", "NN", "Tensor", "COpenBLAS"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // The Open MPI implementation of UNet's `Collective`; only the CLI links it.
        .target(name: "MPICollective", dependencies: ["UNet", "CMPI"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(
            name: "unet-cli",
            dependencies: ["UNet", "NN", "Tensor", "Benchmarking", "MPICollective", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]),
        // Timing harnesses for tuning the kernels (`swift run -c release unet-tune --help`); not a product.
        .executableTarget(
            name: "unet-tune",
            dependencies: ["Tensor", "Benchmarking", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UNetTests", dependencies: ["UNet", "NN", "Tensor"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "BenchmarkingTests", dependencies: ["Benchmarking", "UNet", "Tensor"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "CLITests", dependencies: ["unet-cli", "NN"], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
