import COpenBLAS

/// The OpenBLAS kernel set this process runs. Its vector width sets the speed of the exact
/// convolution paths' GEMMs, and so where Winograd's fewer multiplications pay off
/// (`ConvolutionKernels.automaticWinogradTile`).
package enum BLASKernel {
    /// `openblas_get_corename()`, e.g. "Cooperlake", "Haswell" or "Zen", read once.
    package static let coreName = String(cString: openblas_get_corename())

    /// The vector width of `coreName`; nil for a core this table does not know.
    package static let vectorBits = vectorBits(ofCore: coreName)

    /// The vector width of an OpenBLAS x86-64 core (the names of `openblas_get_corename()`); nil for
    /// other architectures and unknown names.
    package static func vectorBits(ofCore name: String) -> Int? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 512
        case "haswell", "zen", "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 256
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
             "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat": return 128
        default: return nil
        }
    }
}
