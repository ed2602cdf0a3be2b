// Tests for ZMQMessage: building frames, reading them in place, and forwarding a received frame
// with ZMQSocket.sendMessage without copying it. Single-threaded; one context per test.

import Testing
import ZeroMQ

@Suite struct ZMQMessageTests {
    @Test func aFrameBuiltFromBytesHoldsACopyOfThem() throws {
        let source: [UInt8] = [1, 2, 3, 4, 5]
        let message = try ZMQMessage(bytes: source)
        #expect(message.count == 5)
        #expect(message.bytes == source)
        #expect(message.hasMore == false)
    }

    @Test func aFrameCopiedFromABufferHoldsTheSameBytes() throws {
        let source: [UInt8] = [9, 8, 7]
        var message = ZMQMessage()
        try source.withUnsafeBytes { buffer in
            message = try ZMQMessage(copying: buffer)
        }
        #expect(message.bytes == source)
    }

    @Test func anEmptyFrameHasNoBytes() {
        let message = ZMQMessage()
        #expect(message.count == 0)
        #expect(message.bytes.isEmpty)
    }

    @Test func aSizedFrameCanBeFilledInPlace() throws {
        var message = try ZMQMessage(count: 3)
        message.withUnsafeMutableBytes { buffer in
            buffer.copyBytes(from: [7, 8, 9])
        }
        #expect(message.bytes == [7, 8, 9])
    }

    @Test func receivedFramesReportMoreAndForwardWithoutCopying() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let front = try ZMQSocket(context: context, type: .pair)
        defer { front.close() }
        let middle = try ZMQSocket(context: context, type: .pair)
        defer { middle.close() }
        let back = try ZMQSocket(context: context, type: .pair)
        defer { back.close() }
        let back2 = try ZMQSocket(context: context, type: .pair)
        defer { back2.close() }
        try middle.setReceiveTimeout(milliseconds: generousWait)
        try back2.setReceiveTimeout(milliseconds: generousWait)
        try front.connect(try middle.bind(uniqueInprocEndpoint("front")))
        try back2.connect(try back.bind(uniqueInprocEndpoint("back")))

        try front.send([Array("head".utf8), Array("tail".utf8)])

        // Forward frame by frame, as a broker would, preserving the "more" flag.
        var more = true
        var forwarded = 0
        while more {
            guard var frame = try middle.receiveMessage(dontWait: false) else {
                Issue.record("no frame arrived within the receive timeout")
                return
            }
            more = frame.hasMore
            #expect(try back.sendMessage(&frame, more: more, dontWait: false))
            #expect(frame.count == 0)
            forwarded += 1
        }
        #expect(forwarded == 2)
        #expect(try back2.receive() == [Array("head".utf8), Array("tail".utf8)])
    }
}
