/// The subset of ONNX's protobuf messages (onnx.proto) the export writes, with their field numbers.
/// Each message encodes itself with `ProtobufWriter`.
package enum ONNX {
    /// `TensorProto.DataType` values used here.
    package enum DataType: Int64 {
        /// 32-bit float.
        case float = 1
        /// 64-bit signed integer (Slice's starts, ends and axes).
        case int64 = 7
    }

    /// `TensorProto`: a named constant (an initializer), its values little-endian in `raw_data`.
    package struct TensorValue {
        /// The name nodes refer to.
        package var name: String
        /// The shape.
        package var dims: [Int]
        /// The element type.
        package var dataType: DataType
        /// The elements, little-endian, `dims.reduce(1, *)` of them.
        package var rawData: [UInt8]

        /// A float tensor.
        package init(name: String, dims: [Int], floats: [Float]) {
            precondition(dims.reduce(1, *) == floats.count, "ONNX tensor \(name): \(floats.count) values for shape \(dims)")
            self.name = name
            self.dims = dims
            dataType = .float
            var w = ProtobufWriter()
            w.appendLittleEndian(floats)
            rawData = w.bytes
        }

        /// A 1-D int64 tensor.
        package init(name: String, int64s: [Int64]) {
            self.name = name
            dims = [int64s.count]
            dataType = .int64
            rawData = []
            rawData.reserveCapacity(int64s.count * 8)
            for v in int64s {
                let u = UInt64(bitPattern: v)
                for shift in stride(from: 0, to: 64, by: 8) { rawData.append(UInt8(truncatingIfNeeded: u >> UInt64(shift))) }
            }
        }

        /// Fields: dims 1 (packed int64), data_type 2, name 8, raw_data 9.
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            w.writePacked(1, int64: dims.map(Int64.init))
            w.write(2, int64: dataType.rawValue)
            w.write(8, string: name)
            w.write(9, bytes: rawData)
            return w
        }
    }

    /// `AttributeProto` of one of the kinds the export uses.
    package struct Attribute {
        /// A node attribute's value.
        package enum Value {
            /// FLOAT (type 1), field `f` 2.
            case float(Float)
            /// INT (type 2), field `i` 3.
            case int(Int64)
            /// INTS (type 7), field `ints` 8.
            case ints([Int64])
        }
        /// The attribute's name, e.g. "kernel_shape".
        package var name: String
        /// Its value.
        package var value: Value

        /// Creates an attribute.
        package init(_ name: String, _ value: Value) {
            self.name = name
            self.value = value
        }

        /// Fields: name 1, the value's field, type 20. Repeated ints are written unpacked, as
        /// onnx.proto (proto2) declares them.
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            w.write(1, string: name)
            switch value {
            case let .float(f):
                w.write(2, float: f)
                w.write(20, int64: 1)
            case let .int(i):
                w.write(3, int64: i)
                w.write(20, int64: 2)
            case let .ints(values):
                for v in values { w.write(8, int64: v) }
                w.write(20, int64: 7)
            }
            return w
        }
    }

    /// `NodeProto`: one operator application.
    package struct Node {
        /// The operator, e.g. "Conv".
        package var opType: String
        /// A unique node name.
        package var name: String
        /// Input value names.
        package var inputs: [String]
        /// Output value names.
        package var outputs: [String]
        /// Attributes.
        package var attributes: [Attribute]

        /// Creates a node.
        package init(_ opType: String, name: String, inputs: [String], outputs: [String], attributes: [Attribute] = []) {
            self.opType = opType
            self.name = name
            self.inputs = inputs
            self.outputs = outputs
            self.attributes = attributes
        }

        /// Fields: input 1, output 2, name 3, op_type 4, attribute 5.
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            for i in inputs { w.write(1, string: i) }
            for o in outputs { w.write(2, string: o) }
            w.write(3, string: name)
            w.write(4, string: opType)
            for a in attributes { w.write(5, message: a.encode()) }
            return w
        }
    }

    /// One dimension of a declared shape: fixed, or named (`dim_param`, dynamic).
    package enum Dimension: Equatable {
        /// A fixed extent (`dim_value`, field 1).
        case value(Int)
        /// A symbolic extent (`dim_param`, field 2); equal names mean equal extents.
        case parameter(String)
    }

    /// `ValueInfoProto` of a float tensor: a graph input or output.
    package struct ValueInfo {
        /// The value's name.
        package var name: String
        /// Its shape.
        package var shape: [Dimension]

        /// Creates a declaration.
        package init(name: String, shape: [Dimension]) {
            self.name = name
            self.shape = shape
        }

        /// `ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1, shape 2:
        /// TensorShapeProto { dim 1: { dim_value 1 | dim_param 2 } } } } }`.
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            w.write(1, string: name)
            w.writeMessage(2) { type in
                type.writeMessage(1) { tensor in
                    tensor.write(1, int64: DataType.float.rawValue)
                    tensor.writeMessage(2) { shapeProto in
                        for d in shape {
                            shapeProto.writeMessage(1) { dim in
                                switch d {
                                case let .value(v): dim.write(1, int64: Int64(v))
                                case let .parameter(p): dim.write(2, string: p)
                                }
                            }
                        }
                    }
                }
            }
            return w
        }
    }

    /// `GraphProto`.
    package struct Graph {
        /// The graph's name.
        package var name: String
        /// Nodes in topological order.
        package var nodes: [Node] = []
        /// Constants.
        package var initializers: [TensorValue] = []
        /// Declared inputs.
        package var inputs: [ValueInfo] = []
        /// Declared outputs.
        package var outputs: [ValueInfo] = []

        /// An empty graph.
        package init(name: String) { self.name = name }

        /// Fields: node 1, name 2, initializer 5, input 11, output 12.
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            for n in nodes { w.write(1, message: n.encode()) }
            w.write(2, string: name)
            for t in initializers { w.write(5, message: t.encode()) }
            for i in inputs { w.write(11, message: i.encode()) }
            for o in outputs { w.write(12, message: o.encode()) }
            return w
        }
    }

    /// `ModelProto`.
    package struct Model {
        /// The IR version (8 goes with opsets up to 17/18).
        package var irVersion: Int64
        /// The default-domain opset.
        package var opset: Int64
        /// Who wrote the file.
        package var producerName: String
        /// Its version.
        package var producerVersion: String
        /// A description.
        package var docString: String
        /// Key-value metadata.
        package var metadata: [(key: String, value: String)]
        /// The graph.
        package var graph: Graph

        /// Creates a model.
        package init(irVersion: Int64, opset: Int64, producerName: String, producerVersion: String, docString: String,
                     metadata: [(key: String, value: String)], graph: Graph) {
            self.irVersion = irVersion
            self.opset = opset
            self.producerName = producerName
            self.producerVersion = producerVersion
            self.docString = docString
            self.metadata = metadata
            self.graph = graph
        }

        /// Fields: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
        /// opset_import 8 (`OperatorSetIdProto { domain 1, version 2 }`), metadata_props 14
        /// (`StringStringEntryProto { key 1, value 2 }`).
        package func encode() -> ProtobufWriter {
            var w = ProtobufWriter()
            w.write(1, int64: irVersion)
            w.write(2, string: producerName)
            if !producerVersion.isEmpty { w.write(3, string: producerVersion) }
            if !docString.isEmpty { w.write(6, string: docString) }
            w.write(7, message: graph.encode())
            w.writeMessage(8) { $0.write(2, int64: opset) }
            for (key, value) in metadata {
                w.writeMessage(14) { entry in
                    entry.write(1, string: key)
                    entry.write(2, string: value)
                }
            }
            return w
        }
    }
}
