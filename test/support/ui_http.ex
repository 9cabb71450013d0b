defmodule ElixirScope.Test.UIHTTP do
  @moduledoc """
  A small client of the web UI over real HTTP (`:httpc`) for the UI tests: any
  method, headers and body; JSON answers parsed with the independent test parser
  (`ElixirScope.Test.JSON`), so every answer is also checked to be valid JSON.
  """

  alias ElixirScope.Test.JSON

  @doc "GET `path` (relative to the UI's URL) with `params` (a map or keyword) and `headers`."
  def get(url, path, params \\ [], headers \\ []) do
    query = if params == [] or params == %{}, do: "", else: "?" <> URI.encode_query(params)
    request(:get, url <> path <> query, headers)
  end

  @doc "POST a JSON body (a term, or a binary sent as is) with `headers`."
  def post(url, path, body, headers \\ []) do
    body = if is_binary(body), do: body, else: ElixirScope.JSON.encode!(body)
    headers = Enum.map(headers, fn {k, v} -> {to_charlist(k), to_charlist(v)} end)

    {type, headers} =
      case List.keytake(headers, ~c"content-type", 0) do
        {{_, type}, rest} -> {type, rest}
        nil -> {~c"application/json", headers}
      end

    raw(:post, {to_charlist(url <> path), headers, type, body})
  end

  @doc "Any request as `:httpc.request/4` takes it, with `headers` as strings."
  def request(method, url, headers) do
    headers = Enum.map(headers, fn {k, v} -> {to_charlist(k), to_charlist(v)} end)
    raw(method, {to_charlist(url), headers})
  end

  defp raw(method, request) do
    {:ok, {{_, status, _}, headers, body}} =
      :httpc.request(method, request, [timeout: 60_000, autoredirect: false], body_format: :binary)

    headers = Map.new(headers, fn {k, v} -> {to_string(k), to_string(v)} end)
    json = if body != "" and headers["content-type"] =~ "json", do: JSON.decode!(body)
    %{status: status, headers: headers, body: body, json: json}
  end

  @doc "The JSON of a GET that must answer 200."
  def get!(url, path, params \\ [], headers \\ []) do
    case get(url, path, params, headers) do
      %{status: 200, json: json} when json != nil -> json
      other -> raise "GET #{path} #{inspect(params)} answered #{other.status}: #{other.body}"
    end
  end

  @doc "A pid as the API writes it."
  def pid_text(pid), do: pid |> :erlang.pid_to_list() |> List.to_string()
end
