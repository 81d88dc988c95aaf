/** Why one edition was not updated: typed, so callers never match message text. */
export type UpdateFailureReason =
  | 'network'
  | 'auth'
  | 'limit'
  | 'not-found'
  | 'http'
  | 'no-date'
  | 'checksum'
  | 'corrupt'
  | 'wrong-edition'
  | 'too-big'
  | 'disk';

export class UpdateFailure extends Error {
  constructor(readonly reason: UpdateFailureReason, message: string) {
    super(message);
    this.name = 'UpdateFailure';
  }
}

/** After these, asking again for another edition in the same run only wastes requests. */
export function stopsTheRun(reason: UpdateFailureReason): boolean {
  return reason === 'auth' || reason === 'limit';
}
