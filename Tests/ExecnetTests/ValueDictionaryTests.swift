// Tests of ValueDictionary, the payload of Value.dict: lookups on both sides of the linear-search
// limit, order and in-place updates, value semantics of copies that diverge before and after
// the lazy key table is built, concurrent first lookups, and a randomized check against a model.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct ValueDictionaryTests {
    /// The reference: pairs in order, searched linearly.
    struct Model {
        var pairs: [(key: Value, value: Value)] = []

        subscript(key: Value) -> Value? {
            get { pairs.first { $0.key == key }?.value }
            set {
                let i = pairs.firstIndex { $0.key == key }
                switch (i, newValue) {
                case let (i?, v?): pairs[i].value = v
                case let (nil, v?): pairs.append((key, v))
                case let (i?, nil): pairs.remove(at: i)
                case (nil, nil): break
                }
            }
        }
    }

    static func check(_ dict: ValueDictionary, _ model: Model, probes: [Value]) {
        #expect(dict.count == model.pairs.count)
        #expect(dict.keys == model.pairs.map(\.key))
        #expect(dict.values == model.pairs.map(\.value))
        for key in probes {
            #expect(dict[key] == model[key], "key \(key)")
            #expect(dict.index(forKey: key)?.offset == model.pairs.firstIndex { $0.key == key })
        }
    }

    @Test("lookups find every key and miss absent ones, small and large", arguments: [0, 1, 8, 9, 17, 1000])
    func lookups(count: Int) {
        let dict = ValueDictionary(uniqueKeysWithValues: (0..<count).map { (Value.string("k\($0)"), Value.int(Int64($0))) })
        #expect(dict.count == count)
        for i in 0..<count {
            #expect(dict[.string("k\(i)")] == .int(Int64(i)))
            #expect(dict["k\(i)"] == .int(Int64(i)))
            #expect(dict.contains(key: .string("k\(i)")))
        }
        #expect(dict["absent"] == nil)
        #expect(dict[.int(0)] == nil)
        #expect(!dict.contains(key: .string("k\(count)")))
    }

    @Test("a dict payload leaves Value at three words")
    func valueSize() {
        #expect(MemoryLayout<ValueDictionary>.size == 3 * MemoryLayout<Int>.size)
        #expect(MemoryLayout<Value>.stride == 3 * MemoryLayout<Int>.size)
    }

    @Test("updates keep positions, new keys go last, removal closes the gap")
    func orderAndUpdates() {
        var dict: ValueDictionary = ["a": 1, "b": 2, "c": 3]
        dict["b"] = 20
        dict[.int(7)] = nil
        dict["d"] = 4
        #expect(dict.keys == ["a", "b", "c", "d"])
        #expect(dict.values == [1, 20, 3, 4])
        #expect(dict.removeValue(forKey: "a") == 1)
        #expect(dict.updateValue(30, forKey: "c") == 3)
        #expect(dict.map(\.key) == ["b", "c", "d"])
        #expect(dict[dict.index(forKey: "d")!].value == 4)
        #expect(dict.description == "{'b': 20, 'c': 30, 'd': 4}")
        dict.removeAll()
        #expect(dict.isEmpty && dict["b"] == nil)
    }

    @Test("a literal with a repeated key keeps the first position and the last value, as in Python")
    func literalDuplicates() {
        let dict: ValueDictionary = ["x": 1, "y": 2, "x": 3]
        #expect(dict.keys == ["x", "y"])
        #expect(dict["x"] == 3)
    }

    @Test("equality and hashing are order-sensitive and agree with each other")
    func equalityAndHashing() {
        let ab: ValueDictionary = ["a": 1, "b": 2]
        var built = ValueDictionary()
        built["a"] = 1
        built["b"] = 2
        #expect(ab == built && ab.hashValue == built.hashValue)
        #expect(ab != ["b": 2, "a": 1])
        #expect(ValueDictionary(ab.ordered) == ab)
    }

    @Test("copies that diverge never share a stale key table", arguments: [false, true])
    func copiesDiverge(buildTableFirst: Bool) {
        let count = 50
        var original = ValueDictionary(minimumCapacity: count)
        for i in 0..<count { original[.int(Int64(i))] = .int(Int64(i)) }
        if buildTableFirst { #expect(original[.int(3)] == 3) }
        let probes = (-1...(count + 1)).map { Value.int(Int64($0)) }

        var appended = original
        appended[.int(Int64(count))] = "new"
        var removed = original
        removed[.int(0)] = nil
        var replaced = original
        replaced[.int(5)] = "five"

        var model = Model(pairs: (0..<count).map { (.int(Int64($0)), .int(Int64($0))) })
        Self.check(original, model, probes: probes)
        var appendedModel = model
        appendedModel[.int(Int64(count))] = "new"
        Self.check(appended, appendedModel, probes: probes)
        var removedModel = model
        removedModel[.int(0)] = nil
        Self.check(removed, removedModel, probes: probes)
        model[.int(5)] = "five"
        Self.check(replaced, model, probes: probes)
    }

    @Test("threads racing on the first lookup of a shared dictionary all see every key")
    func concurrentFirstLookups() async {
        let count = 5000
        for _ in 0..<5 {
            let dict = ValueDictionary(uncheckedUniqueKeys: (0..<count).map { .string("key\($0)") },
                                       values: (0..<count).map { .int(Int64($0)) })
            let found = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        (0..<count).reduce(0) { $0 + (dict[.string("key\($1)")] == .int(Int64($1)) ? 1 : 0) }
                    }
                }
                return await group.reduce(0, +)
            }
            #expect(found == 8 * count)
        }
    }

    @Test("a large decoded dict finds repeated text keys of every length and kind")
    func decodedRepeatedTextKeys() throws {
        // Keys of 0 to 20 UTF-8 bytes (the duplicate check hashes up to 8 bytes as one word),
        // ASCII and not, each sent twice: the second time with a new value.
        let texts = (0...20).map { String(repeating: "k", count: $0) } + ["é", "ée", "日本語", "e\u{301}", "ключ-ключ"]
        var body: [UInt8] = []
        for (round, text) in (texts + texts).enumerated() {
            body += try dumps(.string(text)).dropFirst().dropLast()
            body += try dumps(.int(Int64(round))).dropFirst().dropLast()
            body.append(Serializer.Opcode.setItem)
        }
        let bytes = [2, Serializer.Opcode.newDict] + body + [Serializer.Opcode.stop]
        guard case .dict(let dict) = try loads(bytes) else {
            Issue.record("not a dict")
            return
        }
        #expect(dict.keys == texts.map(Value.string))
        #expect(dict.values == (texts.count..<(2 * texts.count)).map { .int(Int64($0)) })
        // The same through the channel decoder, where M (latin-1) text becomes strings too.
        var latin1: [UInt8] = [Serializer.Opcode.newDict]
        for (round, byte) in ([0x41, 0xE9, 0x41, 0xE9] as [UInt8]).enumerated() {
            latin1 += [Serializer.Opcode.py2String, 0, 0, 0, 1, byte, Serializer.Opcode.int, 0, 0, 0, UInt8(round)]
            latin1.append(Serializer.Opcode.setItem)
        }
        for i in 0..<20 {
            latin1 += Array(try dumps(.int(Int64(100 + i))).dropFirst().dropLast()) + [Serializer.Opcode.none, Serializer.Opcode.setItem]
        }
        let decoded = try Serializer.decodeInternal(latin1 + [Serializer.Opcode.stop], resolveChannel: nil)
        #expect(decoded.dictValue?.count == 22)
        #expect(decoded["A"] == 2 && decoded["\u{E9}"] == 3)
    }

    @Test("random updates, removals, lookups and copies match a linear model", arguments: [1, 2, 3, 4])
    func randomOperations(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var dicts = [ValueDictionary()]
        var models = [Model()]
        let keySpace = 40
        let key = { (n: UInt64) -> Value in n % 2 == 0 ? .int(Int64(n / 2)) : .string("s\(n / 2)") }
        for step in 0..<4000 {
            let which = Int(rng.next() % UInt64(dicts.count))
            let k = key(rng.next() % UInt64(keySpace))
            switch rng.next() % 10 {
            case 0...4:
                dicts[which][k] = .int(Int64(step))
                models[which][k] = .int(Int64(step))
            case 5, 6:
                #expect(dicts[which].removeValue(forKey: k) == models[which][k])
                models[which][k] = nil
            case 7:
                #expect(dicts[which][k] == models[which][k])
            default:
                if dicts.count < 6 {
                    dicts.append(dicts[which])
                    models.append(models[which])
                } else {
                    dicts.remove(at: which)
                    models.remove(at: which)
                }
            }
        }
        let probes = (0..<UInt64(keySpace + 4)).map(key)
        for (dict, model) in zip(dicts, models) {
            Self.check(dict, model, probes: probes)
        }
    }
}
