// A growable Int32Array, for collecting token ids without boxing them in a JS array.

/** A growable Int32Array. */
export class IdBuffer {
  private data: Int32Array;
  private size = 0;

  constructor(initialCapacity = 1024) {
    this.data = new Int32Array(Math.max(1, initialCapacity));
  }

  get length(): number {
    return this.size;
  }

  clear(): void {
    this.size = 0;
  }

  push(id: number): void {
    if (this.size === this.data.length) this.grow(this.size + 1);
    this.data[this.size++] = id;
  }

  pushAll(ids: ArrayLike<number>): void {
    if (this.size + ids.length > this.data.length) this.grow(this.size + ids.length);
    if (ids instanceof Int32Array) this.data.set(ids, this.size);
    else for (let i = 0; i < ids.length; i++) this.data[this.size + i] = ids[i]!;
    this.size += ids.length;
  }

  toInt32Array(): Int32Array {
    return this.data.slice(0, this.size);
  }

  private grow(minCapacity: number): void {
    const grown = new Int32Array(Math.max(minCapacity, this.data.length * 2));
    grown.set(this.data.subarray(0, this.size));
    this.data = grown;
  }
}
