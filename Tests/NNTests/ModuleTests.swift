import NN
import XCTest

final class ModuleTests: XCTestCase {
    func testDottedNamesOfNestedModuleAreStableAndOrdered() {
        let tower = Tower()
        XCTAssertEqual(tower.namedParameters().map(\.0), [
            "stem.weight", "stem.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
            "head.weight", "head.bias",
        ])
        XCTAssertEqual(tower.namedBuffers().map(\.0), ["running_mean"])
        XCTAssertEqual(tower.stateDictionary().map(\.0).last, "running_mean")
        XCTAssertEqual(tower.parameterCount, 3 * 4 + 4 + 2 * (16 + 4) + 8 + 2)
        XCTAssertEqual(Tower().namedParameters().map(\.0), tower.namedParameters().map(\.0))
    }

    func testOptionalChildrenAndExistentialLayerArraysAreDiscovered() {
        final class Block: Module {
            let conv: Conv2d
            let bn: BatchNorm2d?
            let skipped: BatchNorm2d? = nil
            let layers: [any Layer]
            let bias: Parameter?
            init(_ rng: inout SeededGenerator) {
                conv = Conv2d(inputChannels: 1, outputChannels: 2, kernelSize: 1, bias: false, generator: &rng)
                bn = BatchNorm2d(channels: 2)
                layers = [ReLU(), Conv2d(inputChannels: 2, outputChannels: 1, kernelSize: 1, generator: &rng)]
                bias = Parameter(Tensor.zeros([1]))
            }
        }
        var rng = SeededGenerator(seed: 1)
        let block = Block(&rng)
        XCTAssertEqual(block.namedParameters().map(\.0), ["bias", "conv.weight", "bn.weight", "bn.bias",
                                                          "layers.1.weight", "layers.1.bias"])
        XCTAssertEqual(block.namedChildren.map(\.0), ["conv", "bn", "layers.0", "layers.1"])
    }

    func testTrainEvalPropagatesToDescendants() {
        let tower = Tower()
        XCTAssertTrue(tower.allModules().allSatisfy(\.isTraining))
        tower.eval()
        XCTAssertTrue(tower.allModules().allSatisfy { !$0.isTraining })
        XCTAssertEqual(tower.allModules().count, 5)
        tower.blocks[1].train()
        XCTAssertTrue(tower.blocks[1].isTraining)
        XCTAssertFalse(tower.blocks[0].isTraining)
    }

    func testZeroGradientsAndFreezing() {
        let tower = Tower()
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0.5, 2])
        tower(x).sum().backward()
        XCTAssertTrue(tower.parameters.allSatisfy { $0.gradient != nil })
        tower.zeroGradients()
        XCTAssertTrue(tower.parameters.allSatisfy { $0.gradient == nil })
        tower.stem.weight.isTrainable = false
        tower(x).sum().backward()
        XCTAssertNil(tower.stem.weight.gradient)
        XCTAssertNotNil(tower.stem.bias.gradient)
        XCTAssertEqual(tower.trainableParameters.count, 7)
    }
}
