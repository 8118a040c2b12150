// swift-tools-version:6.1
// libFuzzer targets for swift-unet's readers and parsers, kept out of the main package so that its
// builds, tests and CI never compile them. Build and run them with tools/fuzz.sh (see
// docs/RELIABILITY.md); the script builds this package with
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing
// so that every Swift module (the library's too) is instrumented for coverage and AddressSanitizer,
// and libFuzzer supplies `main`.
import Foundation
import PackageDescription

// A `.package(path:)` dependency is known by its folder's name (e.g. "main", "wt-e", a CI clone).
let rootIdentity = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
// The CLI uses `package` declarations of the library (e.g. `ConvolutionPolicy`); compiling its sources
// under the root package's name (SwiftPM's: the identity with `_` for other characters) makes them visible.
let rootPackageName = String(rootIdentity.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })

func library(_ name: String) -> Target.Dependency { .product(name: name, package: rootIdentity) }

let package = Package(
    name: "SwiftUNetFuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The CLI's sources (a symlink to ../Sources/unet-cli) without main.swift, as a library, so
        // that FuzzCLI can call `Unet.parseAsRoot` and `SliceRange(argument:)`.
        .target(
            name: "CLICore",
            dependencies: [library("UNet"), library("NN"), library("Tensor"), library("Benchmarking"),
                           library("MPICollective"), .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "CLICore", exclude: ["main.swift"], packageAccess: false,
            swiftSettings: v5 + [.unsafeFlags(["-package-name", rootPackageName])]),
        // Starting libFuzzer and the seed request, shared by every target.
        .target(name: "FuzzSupport", path: "Support", swiftSettings: v5),
        // Compiled under the root package's name too, for the writer's `package` BigTIFF switch (seeds).
        .executableTarget(name: "FuzzTIFF", dependencies: ["FuzzSupport", library("UNet")], path: "Targets/FuzzTIFF",
                          packageAccess: false, swiftSettings: v5 + [.unsafeFlags(["-package-name", rootPackageName])]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["FuzzSupport", library("UNet"), library("NN"), library("Tensor")],
                          path: "Targets/FuzzSafeTensors", swiftSettings: v5),
        .executableTarget(name: "FuzzJSON", dependencies: ["FuzzSupport", library("NN")], path: "Targets/FuzzJSON", swiftSettings: v5),
        .executableTarget(name: "FuzzCLI", dependencies: ["FuzzSupport", "CLICore"], path: "Targets/FuzzCLI", swiftSettings: v5),
    ]
)
