@_exported import NN
@_exported import Tensor
