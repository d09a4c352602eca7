import Foundation
import Synchronization

/// Time-ordered event ids: ULIDs (26 characters of Crockford base32: 48 bits of Unix
/// milliseconds, then 80 bits), so text order is recording order, in both stores' byte order.
///
/// Within one process ids are strictly increasing even within a millisecond (the random part
/// of the previous id plus one), so two events of one change (or two changes in one
/// millisecond) keep their order. Across processes, a tenant's ids follow commit order through
/// ``next(after:)`` and the profile's `lastEventId` condition (a lagging clock cannot go
/// backwards; an event's `time` is still its own clock's).
public final class EventIDGenerator: Sendable {
    private let clock: any WallClock
    private let last: Mutex<(milliseconds: UInt64, random: (UInt16, UInt64))>

    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
        self.last = Mutex((0, (0, 0)))
    }

    /// A new id, greater than every id this generator made before.
    public func next() -> String {
        let now = UInt64(max(0, clock.now().timeIntervalSince1970 * 1000))
        let (milliseconds, random) = last.withLock { last -> (UInt64, (UInt16, UInt64)) in
            if now > last.milliseconds {
                var generator = SystemRandomNumberGenerator()
                // The top bit of the 80 is left clear, so incrementing within a millisecond
                // cannot overflow in practice.
                last = (now, (UInt16.random(in: 0...0x7FFF, using: &generator), generator.next()))
            } else {
                // Same millisecond (or the clock stepped back): the previous id plus one.
                let (low, overflow) = last.random.1.addingReportingOverflow(1)
                last.random = (last.random.0 &+ (overflow ? 1 : 0), low)
            }
            return (last.milliseconds, last.random)
        }
        return Self.encode(milliseconds: milliseconds, high: random.0, low: random.1)
    }

    /// A new id greater than `previous` (a tenant's latest event id, read from its profile)
    /// and than every id this generator made before: a fresh id, or the successor of
    /// `previous` when this process's clock is behind the one that made it. So a tenant's ids
    /// increase in commit order whatever the processes' clocks say.
    public func next(after previous: String?) -> String {
        guard let previous, let decoded = Self.decode(previous) else { return next() }
        let fresh = next()
        guard let current = Self.decode(fresh), current <= decoded else { return fresh }
        // The clock is behind `previous`: its successor (the time part unchanged, unless the
        // 80 random bits overflow), remembered so that later ids stay above it.
        let successor = decoded &+ 1
        let milliseconds = UInt64(truncatingIfNeeded: successor >> 80)
        let high = UInt16(truncatingIfNeeded: successor >> 64)
        let low = UInt64(truncatingIfNeeded: successor)
        last.withLock { last in
            if (milliseconds, high, low) > (last.milliseconds, last.random.0, last.random.1) { last = (milliseconds, (high, low)) }
        }
        return Self.encode(milliseconds: milliseconds, high: high, low: low)
    }

    /// The 128 bits of a ULID (48 of time, 80 of randomness); `nil` for other text.
    static func decode(_ id: String) -> UInt128? {
        let bytes = Array(id.utf8)
        guard bytes.count == 26 else { return nil }
        var value: UInt128 = 0
        for (index, byte) in bytes.enumerated() {
            // 130 bits are encoded: the first character holds 3 (0-7), as in every ULID.
            guard let digit = alphabet.firstIndex(of: byte), index > 0 || digit < 8 else { return nil }
            value = value << 5 | UInt128(digit)
        }
        return value
    }

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// 10 characters of time (50 bits, the top 2 zero) and 16 of randomness (80 bits).
    static func encode(milliseconds: UInt64, high: UInt16, low: UInt64) -> String {
        var bytes = [UInt8](repeating: 0, count: 26)
        for index in 0..<10 {
            bytes[9 - index] = alphabet[Int((milliseconds >> (5 * UInt64(index))) & 31)]
        }
        // 80 bits = high (16) then low (64), 5 bits per character from the most significant.
        let random = UInt128(high) << 64 | UInt128(low)
        for index in 0..<16 {
            bytes[10 + index] = alphabet[Int((random >> UInt128(75 - 5 * index)) & 31)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Where a tenant's events are kept and where the dispatcher finds the undelivered ones.
///
/// - The audit trail: `EVENT#<eventId>` in the tenant's partition (kept after offboarding unless
///   purged).
/// - The outbox: `EVENT#<eventId>` in one of 16 reserved partitions `_outbox#0` … `_outbox#f`,
///   chosen by the tenant id's last hex digit (random bits of a UUIDv7), so one tenant's events
///   are in one partition, in id order, and no partition takes every write. An outbox item is
///   deleted once every configured sink has the event; one that a sink kept refusing moves to
///   `_outbox-failed` (`EVENT#<eventId>`), from where it can be redelivered.
public enum EventOutboxLayout {
    /// The sort-key prefix of events, in a tenant's partition and in the outbox.
    public static let prefix = "EVENT#"
    /// The outbox partitions.
    public static let shards: [String] = "0123456789abcdef".map { "_outbox#\($0)" }
    /// Events a sink kept refusing.
    public static let failedPartition = "_outbox-failed"

    /// The outbox partition of a tenant's events.
    public static func shard(of tenantId: TenantID) -> String {
        let last = tenantId.rawValue.utf8.last ?? UInt8(ascii: "0")
        let digit = Character(Unicode.Scalar(last)).hexDigitValue ?? 0
        return shards[digit]
    }

    /// The event's item in the tenant's partition (the audit trail).
    public static func auditKey(_ event: TenantEvent) -> ItemKey {
        ItemKey(tenantId: event.tenantId.rawValue, resourceKey: prefix + event.id)
    }

    /// The event's item in the outbox.
    public static func outboxKey(_ event: TenantEvent) -> ItemKey {
        ItemKey(tenantId: shard(of: event.tenantId), resourceKey: prefix + event.id)
    }

    /// Attribute names of both items.
    public enum Attribute {
        /// The envelope's JSON text (``TenantEvent/envelopeJSON``).
        public static let envelope = "envelope"
        public static let eventType = "eventType"
        public static let time = "time"
        /// On outbox items: the tenant (the partition is the shard).
        public static let eventTenantId = "eventTenantId"
    }
}

/// Makes the events of changes and the writes that record them: the domain services add
/// ``writes(for:)`` to the change's own transaction, so an event exists exactly when its change
/// does, and call ``recorded(_:)`` once the transaction is durable (which wakes the dispatcher).
public struct EventRecorder: Sendable {
    /// CloudEvents `source` of every event.
    public let source: String
    private let clock: any WallClock
    private let ids: EventIDGenerator
    private let onRecorded: @Sendable ([TenantEvent]) -> Void

    /// - Parameters:
    ///   - source: CloudEvents `source` (default `urn:onboard:<host name>`).
    ///   - onRecorded: told of events once their transaction is durable (the dispatcher's wake-up).
    public init(
        source: String = EventRecorder.defaultSource, clock: any WallClock = SystemWallClock(), ids: EventIDGenerator? = nil,
        onRecorded: @escaping @Sendable ([TenantEvent]) -> Void = { _ in }
    ) {
        self.source = source
        self.clock = clock
        self.ids = ids ?? EventIDGenerator(clock: clock)
        self.onRecorded = onRecorded
    }

    /// `urn:onboard:<host name>`.
    public static var defaultSource: String { "urn:onboard:" + ProcessInfo.processInfo.hostName }

    /// A new event of `type` for the tenant, made now by ``ChangeContext/current``.
    /// - Parameter previous: the tenant's latest event id as its profile has it
    ///   (``Tenant/Attribute/lastEventId``): the new id is greater (see
    ///   ``EventIDGenerator/next(after:)``). Make the event after reading the profile, and
    ///   write it on ``Tenant/lastEventIdUnchanged(_:)``, setting the new id.
    public func event(_ type: TenantEventType, tenantId: TenantID, data: [String: AttributeValue], after previous: String? = nil) -> TenantEvent {
        let context = ChangeContext.current
        return TenantEvent(
            id: ids.next(after: previous), type: type, tenantId: tenantId, time: Timestamp.format(clock.now()), source: source, actor: context.actor,
            requestID: context.requestID, data: data
        )
    }

    /// The two puts that record an event (its audit item and its outbox item), each only if no
    /// item has its key (ids are unique; a lost answer's retry recognises its own write).
    public func writes(for event: TenantEvent) -> [TransactionWrite] {
        let json = event.envelopeJSON
        let audit = Item(key: EventOutboxLayout.auditKey(event), attributes: [
            EventOutboxLayout.Attribute.envelope: .string(json),
            EventOutboxLayout.Attribute.eventType: .string(event.type.rawValue),
            EventOutboxLayout.Attribute.time: .string(event.time),
        ])
        let outbox = Item(key: EventOutboxLayout.outboxKey(event), attributes: [
            EventOutboxLayout.Attribute.envelope: .string(json),
            EventOutboxLayout.Attribute.eventType: .string(event.type.rawValue),
            EventOutboxLayout.Attribute.time: .string(event.time),
            EventOutboxLayout.Attribute.eventTenantId: .string(event.tenantId.rawValue),
        ])
        return [.put(audit, condition: .itemNotExists), .put(outbox, condition: .itemNotExists)]
    }

    /// Says that these events' transaction is durable.
    public func recorded(_ events: TenantEvent...) { onRecorded(events) }

    /// The same recorder (same source, clock and ids), also telling `observer` of every durable
    /// event, after whoever it told before.
    public func observed(by observer: @escaping @Sendable ([TenantEvent]) -> Void) -> EventRecorder {
        let told = onRecorded
        return EventRecorder(source: source, clock: clock, ids: ids) { events in
            told(events)
            observer(events)
        }
    }
}
