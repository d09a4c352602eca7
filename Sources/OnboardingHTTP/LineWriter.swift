#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Writes log lines to a file descriptor from one thread of its own, so that a caller (an
/// event-loop thread answering requests) never blocks on a slow or stalled pipe.
///
/// ``enqueue(_:)`` appends a line to a bounded queue and returns; the writer thread writes the
/// queue in order. When the queue holds ``capacityBytes`` (the reader of the pipe stopped
/// reading), further lines are dropped and counted, and the count is written as its own line
/// (``LineLogHandler/droppedLinesLine(_:format:)``, `dropped N log lines`) where the lines went
/// missing, once the writer can write again. Nothing is dropped while the reader keeps up.
///
/// Lines never interleave: this thread is the descriptor's only writer in the process
/// (``shared(fileDescriptor:format:)``), and it writes whole lines, at most `PIPE_BUF` bytes per
/// `write(2)` unless a single line is longer, so even another process writing to the same pipe
/// cannot split a line. A graceful exit writes every queued line first: the shared writers are
/// flushed by an `atexit` handler (see ``flush(giveUpAfter:)``). A process killed (`SIGKILL`,
/// a crash) loses what is still queued: at most ``capacityBytes``, normally nothing.
public final class LineWriter: @unchecked Sendable {
    /// 1 MiB: about 6,000 request lines, a few seconds of a busy server's log.
    public static let defaultCapacityBytes = 1 << 20

    /// The descriptor written to.
    public let fileDescriptor: Int32
    /// How many bytes of lines may wait; lines beyond are dropped and counted.
    public let capacityBytes: Int
    private let format: LineLogHandler.Format

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    /// Bytes queued or being written (a batch taken by the thread counts until it is written).
    private var pendingBytes = 0
    /// Lines dropped since the last `dropped` line was queued.
    private var droppedSinceReport = 0
    private var droppedTotal = 0
    /// Lines handed to the thread (queued) and lines it finished (written, or given up on).
    private var enqueuedCount = 0
    private var finishedCount = 0
    private var stopping = false
    private var stopped = false

    /// A writer with a thread of its own. For a process's standard output or error use
    /// ``shared(fileDescriptor:format:)``: one writer per descriptor keeps the lines in order.
    /// - Parameter format: how the `dropped N log lines` line is written.
    public init(fileDescriptor: Int32, capacityBytes: Int = LineWriter.defaultCapacityBytes, format: LineLogHandler.Format = .text) {
        self.fileDescriptor = fileDescriptor
        self.capacityBytes = max(1, capacityBytes)
        self.format = format
        let thread = Thread { [self] in run() }
        thread.name = "onboard-log-writer-\(fileDescriptor)"
        thread.start()
    }

    /// Queues `line` (which ends with a newline) and returns at once; drops it (and counts it)
    /// when the queue is full.
    public func enqueue(_ line: [UInt8]) {
        condition.lock()
        defer { condition.unlock() }
        if stopping || pendingBytes + line.count > capacityBytes {
            droppedSinceReport += 1
            droppedTotal += 1
            return
        }
        // The first line after a gap says how many went missing in it (the report itself may
        // exceed the capacity by its few bytes).
        appendReportIfNeeded()
        queue.append(line)
        pendingBytes += line.count
        enqueuedCount += 1
        // Broadcast: flushers wait on the same condition as the thread.
        condition.broadcast()
    }

    /// Lines dropped so far because the queue was full.
    public var droppedLines: Int {
        condition.lock()
        defer { condition.unlock() }
        return droppedTotal
    }

    /// Waits until every line queued before the call (and the report of lines dropped before
    /// it) is written. Gives up when the writer makes no progress for `giveUpAfter` (nobody
    /// reads the pipe): a stalled reader must not hang an exit forever.
    /// - Returns: `true` when everything was written.
    @discardableResult
    public func flush(giveUpAfter: Duration = .seconds(5)) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        appendReportIfNeeded()
        let target = enqueuedCount
        let patience = Double(giveUpAfter.components.seconds) + Double(giveUpAfter.components.attoseconds) / 1e18
        var lastProgress = finishedCount
        var deadline = Date(timeIntervalSinceNow: patience)
        while finishedCount < target && !stopped {
            if !condition.wait(until: deadline) {
                if finishedCount == lastProgress { return false }
                lastProgress = finishedCount
                deadline = Date(timeIntervalSinceNow: patience)
            }
        }
        return finishedCount >= target
    }

    /// Flushes (``flush(giveUpAfter:)``), then ends the thread; lines enqueued afterwards are
    /// dropped. For writers made for one use (tests); the shared writers live as long as the process.
    public func stop(giveUpAfter: Duration = .seconds(5)) {
        flush(giveUpAfter: giveUpAfter)
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Queues the `dropped N log lines` line if lines were dropped since the last one.
    /// Call with `condition` locked.
    private func appendReportIfNeeded() {
        guard droppedSinceReport > 0, !stopping else { return }
        let report = LineLogHandler.droppedLinesLine(droppedSinceReport, format: format)
        droppedSinceReport = 0
        queue.append(report)
        pendingBytes += report.count
        enqueuedCount += 1
        condition.broadcast()
    }

    private func run() {
        condition.lock()
        while true {
            while queue.isEmpty && !stopping {
                condition.wait()
            }
            if queue.isEmpty {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            condition.unlock()

            // Write outside the lock: callers keep queueing (or dropping) meanwhile.
            var chunk: [UInt8] = []
            chunk.reserveCapacity(Int(PIPE_BUF))
            var batchBytes = 0
            for line in batch {
                if !chunk.isEmpty && chunk.count + line.count > Int(PIPE_BUF) {
                    Self.writeAll(chunk, to: fileDescriptor)
                    chunk.removeAll(keepingCapacity: true)
                }
                chunk.append(contentsOf: line)
                batchBytes += line.count
            }
            if !chunk.isEmpty { Self.writeAll(chunk, to: fileDescriptor) }

            condition.lock()
            pendingBytes -= batchBytes
            finishedCount += batch.count
            // Caught up after a stall: report the gap now rather than with the next line.
            if queue.isEmpty { appendReportIfNeeded() }
            condition.broadcast()
        }
    }

    /// Writes all of `bytes`, retrying short writes and interruptions; gives up silently on
    /// other errors (a log line must never take the service down).
    static func writeAll(_ bytes: [UInt8], to fileDescriptor: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    // MARK: - One writer per descriptor

    private static let shared = Mutex<[Int32: LineWriter]>([:])

    /// The process's writer for `fileDescriptor`, made on first use (`format` is that of the
    /// first caller). Every handler writing to the descriptor shares it, which keeps their lines
    /// in order; the first one also registers an `atexit` handler that flushes them all.
    public static func shared(fileDescriptor: Int32, format: LineLogHandler.Format = .text) -> LineWriter {
        shared.withLock { writers in
            if let writer = writers[fileDescriptor] { return writer }
            if writers.isEmpty { atexit { LineWriter.flushShared() } }
            let writer = LineWriter(fileDescriptor: fileDescriptor, format: format)
            writers[fileDescriptor] = writer
            return writer
        }
    }

    /// Flushes the process's shared writers (``flush(giveUpAfter:)``); a no-op when there are
    /// none. Called at exit; also before something else writes to the same descriptor directly,
    /// so that its text follows the lines logged before it.
    public static func flushShared(giveUpAfter: Duration = .seconds(5)) {
        let writers = shared.withLock { Array($0.values) }
        for writer in writers { writer.flush(giveUpAfter: giveUpAfter) }
    }
}
