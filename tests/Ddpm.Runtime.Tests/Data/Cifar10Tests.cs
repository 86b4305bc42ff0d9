using Ddpm.Data;

namespace Ddpm.Runtime.Tests.Data;

public class Cifar10Tests
{
    /// <summary>A record whose pixel (c, y, x) is (label * 7 + c * 50 + y + x) mod 256, written byte by byte.</summary>
    private static byte[] Record(byte label)
    {
        var record = new byte[Cifar10.RecordBytes];
        record[0] = label;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    record[1 + c * 1024 + y * 32 + x] = Expected(label, c, y, x);
        return record;
    }

    private static byte Expected(int label, int c, int y, int x) => (byte)((label * 7 + c * 50 + y + x) % 256);

    private static void WriteRecords(string path, params byte[] labels)
        => File.WriteAllBytes(path, labels.SelectMany(Record).ToArray());

    [Fact]
    public void Records_become_three_channel_images_in_plane_order()
    {
        using var dir = new TempFolder();
        WriteRecords(dir.File("test_batch.bin"), 3, 9, 0);

        var (images, labels) = Cifar10.ReadBatch(dir.File("test_batch.bin"));

        Assert.Equal((3, 3, 32, 32), (images.Count, images.Channels, images.Height, images.Width));
        Assert.Equal(new byte[] { 3, 9, 0 }, labels);
        var second = images.Image(1);
        Assert.Equal(Expected(9, 0, 0, 0), second[0]);                  // red plane, top left
        Assert.Equal(Expected(9, 1, 5, 7), second[1024 + 5 * 32 + 7]);  // green plane
        Assert.Equal(Expected(9, 2, 31, 31), second[3071]);             // blue plane, bottom right
    }

    [Fact]
    public void Training_set_is_the_five_batches_in_order_and_the_subfolder_is_found()
    {
        using var dir = new TempFolder();
        var batches = Directory.CreateDirectory(dir.File("cifar-10-batches-bin")).FullName;
        for (int b = 1; b <= 5; b++) WriteRecords(Path.Combine(batches, $"data_batch_{b}.bin"), (byte)b, (byte)(b - 1));
        WriteRecords(Path.Combine(batches, "test_batch.bin"), 8);

        var (train, trainLabels) = Cifar10.Load(dir.Path, train: true);
        var (test, testLabels) = Cifar10.Load(dir.Path, train: false);

        Assert.Equal(10, train.Count);
        Assert.Equal(new byte[] { 1, 0, 2, 1, 3, 2, 4, 3, 5, 4 }, trainLabels);
        Assert.Equal(Expected(5, 2, 1, 1), train.Image(8)[2048 + 33]);
        Assert.Equal(1, test.Count);
        Assert.Equal(new byte[] { 8 }, testLabels);
    }

    [Fact]
    public void WriteBatch_and_ReadBatch_round_trip()
    {
        using var dir = new TempFolder();
        var pixels = Record(4)[1..].Concat(Record(6)[1..]).ToArray();
        Cifar10.WriteBatch(dir.File("b.bin"), new ImageSet(pixels, 2, 3, 32, 32), [4, 6]);
        Assert.Equal(Record(4).Concat(Record(6)), File.ReadAllBytes(dir.File("b.bin")));
        Assert.Equal(pixels, Cifar10.ReadBatch(dir.File("b.bin")).Images.Pixels);
    }

    [Fact]
    public void Truncated_record_error_names_the_file()
    {
        using var dir = new TempFolder();
        var path = dir.File("data_batch_1.bin");
        File.WriteAllBytes(path, Record(1).Concat(Record(2)).Take(3073 + 100).ToArray());

        var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadBatch(path));

        Assert.StartsWith($"{path}: 3173 bytes is not a whole number of 3073-byte CIFAR-10 records: 1 whole records, then a truncated one of 100 bytes.", e.Message);
    }

    [Fact]
    public void Label_out_of_range_is_an_error()
    {
        using var dir = new TempFolder();
        var path = dir.File("data_batch_1.bin");
        WriteRecords(path, 1, 10);
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadBatch(path));
        Assert.StartsWith($"{path}: record 1 has label 10; CIFAR-10 labels are 0..9.", e.Message);
    }

    [Fact]
    public void Missing_files_are_listed()
    {
        using var dir = new TempFolder();
        WriteRecords(dir.File("data_batch_1.bin"), 1);
        var e = Assert.Throws<FileNotFoundException>(() => Cifar10.Load(dir.Path));
        Assert.Contains("data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin", e.Message);
    }
}
