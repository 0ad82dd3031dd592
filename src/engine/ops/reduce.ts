// TODO(helper)
export {};
