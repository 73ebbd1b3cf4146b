/**
 * The elector's view of the cluster's control znode (pause, switchover) and its writes to it and
 * to the history. Kept out of the loop so that the loop reads as decisions: this class only
 * remembers what was read, logs an unreadable record once, and writes outcomes.
 *
 * Every write here is compare-and-set and best-effort: losing one (another writer, a connection
 * blip) never changes what the elector does to the service; a request not cleared simply
 * expires, and a history entry lost is only a line missing from `hafc history`.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import {
  FORMAT_VERSION,
  type ControlRecord,
  type HistoryEntry,
  type PauseState,
  type SwitchoverOutcome,
  type SwitchoverRequest,
} from './records.js';
import type { ControlView, ElectionStore } from './store.js';

export class ControlState {
  private view: ControlView = { record: null, version: null };
  private reportedError: string | null = null;
  private wasPaused = false;

  constructor(
    private readonly cluster: string,
    private readonly log: Logger,
    private readonly onPausedChange: (paused: PauseState | null) => void,
  ) {}

  /** The last control record read (null when empty, missing or unreadable). */
  get record(): ControlRecord | null {
    return 'record' in this.view ? this.view.record : null;
  }

  get paused(): PauseState | null {
    return this.record?.paused ?? null;
  }

  get pendingSwitchover(): SwitchoverRequest | null {
    return this.record?.switchover ?? null;
  }

  async refresh(store: ElectionStore, onChange?: () => void): Promise<void> {
    this.view = await store.readControl(onChange);
    if ('error' in this.view) {
      if (this.reportedError !== this.view.error) {
        this.reportedError = this.view.error;
        this.log.error('the control znode is unreadable: ignoring it (no pause, no switchover)', {
          error: this.view.error,
        });
      }
    } else this.reportedError = null;
    const p = this.paused;
    if (!!p !== this.wasPaused) {
      this.wasPaused = !!p;
      if (p)
        this.log.warn('cluster paused: monitoring only, no automatic promotion, demotion or fencing', {
          reason: p.reason,
          by: p.by,
          since: p.at,
        });
      else this.log.info('cluster resumed: automatic failover is back on');
      try {
        this.onPausedChange(p);
      } catch (err) {
        this.log.error('onPausedChange listener threw', { error: errorMessage(err) });
      }
    }
  }

  /**
   * Ends the pending request `req` with an outcome, if it is still the pending one. True when
   * written; false when someone else changed the znode first (the next step reads it again).
   */
  async finish(
    store: ElectionStore,
    req: SwitchoverRequest,
    outcome: Omit<SwitchoverOutcome, 'id' | 'from' | 'to' | 'at'>,
  ): Promise<boolean> {
    const v = this.view;
    if (!('record' in v) || v.record?.switchover?.id !== req.id) return false;
    const next: ControlRecord = {
      ...v.record,
      formatVersion: FORMAT_VERSION,
      cluster: this.cluster,
      lastSwitchover: { id: req.id, from: req.from, to: req.to, at: new Date().toISOString(), ...outcome },
      updatedAt: new Date().toISOString(),
    };
    delete next.switchover;
    try {
      const ok = await store.writeControl(next, v.version);
      if (ok) this.view = { record: next, version: (v.version ?? -1) + 1 };
      return ok;
    } catch (err) {
      this.log.warn('could not record the outcome of a switchover', { id: req.id, error: errorMessage(err) });
      return false;
    }
  }

  /** Fire and forget: a history entry must never hold a transition up. */
  appendHistory(store: ElectionStore, entry: Omit<HistoryEntry, 'at'>): void {
    store.appendHistory({ at: new Date().toISOString(), ...entry }).catch((err: unknown) => {
      this.log.debug('could not append to the history', { event: entry.event, error: errorMessage(err) });
    });
  }
}
