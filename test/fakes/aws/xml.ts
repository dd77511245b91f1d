/** Escape text for an XML element body. */
export function esc(value: string | number | boolean): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** `<name>value</name>`, or nothing when the value is undefined. */
export function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${esc(value)}</${name}>`;
}

/** Values of `Prefix.member.1`, `Prefix.member.2`, … (Query protocol lists). */
export function members(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const v = params.get(`${prefix}.member.${i}`);
    if (v === null) return out;
    out.push(v);
  }
}

/** Values of `Prefix.1`, `Prefix.2`, … (EC2 query lists). */
export function ec2List(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const v = params.get(`${prefix}.${i}`);
    if (v === null) return out;
    out.push(v);
  }
}

/** EC2 `Filter.N.Name` / `Filter.N.Value.M` pairs. */
export function ec2Filters(params: URLSearchParams): { name: string; values: string[] }[] {
  const out: { name: string; values: string[] }[] = [];
  for (let i = 1; ; i++) {
    const name = params.get(`Filter.${i}.Name`);
    if (name === null) return out;
    out.push({ name, values: ec2List(params, `Filter.${i}.Value`) });
  }
}
