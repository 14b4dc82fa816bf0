/**
 * A counting semaphore: at most `limit` holders at once, the rest wait in FIFO order. Used to keep an
 * SSH connection under the server's MaxSessions instead of having channel opens refused.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<{ grant: () => void; refuse: (err: Error) => void }> = [];
  private closedWith: Error | undefined;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  }

  /** Wait for a slot; resolves to the function that gives it back (calling it twice is harmless). */
  acquire(): Promise<() => void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<() => void>((resolve, reject) => {
      const grant = () => {
        this.active++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.active--;
          this.next();
        });
      };
      this.waiting.push({ grant, refuse: reject });
      this.next();
    });
  }

  /** Run `task` holding a slot. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }

  /** Refuse every waiter and future acquire with `err` (e.g. the connection is gone). */
  close(err: Error): void {
    this.closedWith ??= err;
    for (const waiter of this.waiting.splice(0)) waiter.refuse(err);
  }

  private next(): void {
    while (this.active < this.limit && this.waiting.length > 0) this.waiting.shift()!.grant();
  }
}
