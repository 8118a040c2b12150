/// A module that maps one tensor to one tensor: what `Sequential` chains.
///
/// Layers with extra call arguments (for example `BatchNorm2d`'s fused activation) still provide the
/// one-argument form so they can sit in a `Sequential`.
public protocol Layer: Module {
    /// Applies the layer to `input`.
    func callAsFunction(_ input: Tensor) -> Tensor
}
